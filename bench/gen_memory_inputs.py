#!/usr/bin/env python3
"""Generate the inputs of the memory benchmark (bench/memory.sh, docs/benchmarks/memory.md).

  gen_memory_inputs.py trace OUT HOPS
      one message with HOPS Received headers (~210 bytes each, Postfix-shaped, one second apart,
      newest first) and a short body: 300000 hops make ~63 MB.
  gen_memory_inputs.py open OUT MESSAGES RCPT [RETRIES]
      a Postfix log in which MESSAGES messages stay in the queue: each is accepted (client=,
      cleanup, qmgr from=) and deferred RETRIES times (default 3), never delivered or removed; every
      other message is to RCPT, the rest to other addresses. Timestamps stay within one hour so
      no chain goes idle before the log ends.
"""
import sys


def trace(out, hops):
    with open(out, "w", buffering=1 << 22) as f:
        for i in range(hops - 1, -1, -1):
            h, m, s = (i // 3600) % 24, (i // 60) % 60, i % 60
            f.write(
                "Received: from relay%06d.example.net (relay%06d.example.net [198.51.100.%d])\n"
                "\tby relay%06d.example.net (Postfix) with ESMTPS id 4Q%08X\n"
                "\tfor <bob@example.com>; Tue, 4 Nov 2025 %02d:%02d:%02d +0000\n"
                % (i, i, i % 250 + 1, i + 1, i, h, m, s)
            )
        f.write("Subject: many hops\nMessage-ID: <hops@example.net>\n\nbody\n")


def open_messages(out, n, rcpt, retries):
    with open(out, "w", buffering=1 << 22) as f:
        for k in range(n):
            q = "%010X" % (0x1000000 + k)
            to = rcpt if k % 2 == 0 else "user%d@elsewhere.example" % k
            s = k * 3600 // n
            t = lambda d: "Nov  4 %02d:%02d:%02d" % (6 + (s + d) // 3600, ((s + d) // 60) % 60, (s + d) % 60)
            host = "mx1 postfix"
            f.write("%s %s/smtpd[2001]: %s: client=sender%d.example.org[203.0.113.%d]\n" % (t(0), host, q, k, k % 250 + 1))
            f.write("%s %s/cleanup[2002]: %s: message-id=<open-%d@example.org>\n" % (t(0), host, q, k))
            f.write("%s %s/qmgr[2003]: %s: from=<sender%d@example.org>, size=%d, nrcpt=1 (queue active)\n" % (t(0), host, q, k, 2000 + k % 900))
            for r in range(retries):
                f.write(
                    "%s %s/smtp[2004]: %s: to=<%s>, relay=mx.elsewhere.example[192.0.2.%d]:25, delay=%d, "
                    "delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx.elsewhere.example[192.0.2.%d]:25: "
                    "Connection timed out)\n" % (t(r + 1), host, q, to, k % 250 + 1, 30 * (r + 1), k % 250 + 1)
                )


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "trace":
        trace(sys.argv[2], int(sys.argv[3]))
    elif kind == "open":
        open_messages(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 3)
    else:
        sys.exit("usage: gen_memory_inputs.py trace OUT HOPS | open OUT MESSAGES RCPT")
