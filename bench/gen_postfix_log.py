#!/usr/bin/env python3
"""Generate a realistic EC2-MX Postfix log (classic syslog / maillog_file layout) of a given
size, for the `flowtest diagnose` vs `grep -F` benchmark.

Per message: postscreen's CONNECT/PASS, connect, client=, cleanup message-id, qmgr from=, TLS
line, smtp status line, qmgr removed, disconnect; with ~4% NOQUEUE relay rejects (~1% more
rejected by postscreen's DNSBL check), ~3% deferrals that are retried and delivered later, ~1%
bounces, ~10% passed through a content filter (smtp to 127.0.0.1:10024, re-injected through the
smtpd on 127.0.0.1:10025 under a new queue id), ~5% delivered locally over LMTP to Dovecot
(Dovecot's `lmtp(user)<pid><session>: msgid=...: saved mail to INBOX` line), anvil statistics
and warning lines. About 30 messages a second. One needle message (printed on stderr) sits in
the middle: deferred once, then delivered.

usage: gen_postfix_log.py OUT SIZE_BYTES [SEED]
"""
import random
import sys

out_path, size = sys.argv[1], int(float(sys.argv[2]))
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rng = random.Random(seed)
MON = ["Nov", "Dec"]
HEX = "0123456789ABCDEF"
NEEDLE = "<needle-7f3a9c41@flowtest.provider.test>"
DOMAINS = ["gmail.example", "provider.test", "mail.example.org", "lists.example.net", "corp.example"]
USERS = ["alice", "bob", "carol", "dave", "postmaster", "sales", "info", "support"]


def qid():
    return "".join(rng.choice(HEX) for _ in range(10))


def stamp(t):
    # t: seconds since Nov 1 00:00:00
    day = t // 86400
    mon = 0 if day < 30 else 1
    d = day + 1 if mon == 0 else day - 29
    s = t % 86400
    return "%s %2d %02d:%02d:%02d" % (MON[mon], d, s // 3600, (s // 60) % 60, s % 60)


def main():
    written = 0
    t = 3 * 86400 + 6 * 3600
    sub = 0.0
    pid = 2000
    pending = []  # deferred messages to retry: (due, lines-generator args)
    # Mid-file on big logs; early on small ones, so that the retry a minute later is still in.
    needle_at = size // 2 if size >= 100_000_000 else size // 10
    needle_done = False
    with open(out_path, "w", buffering=1 << 22) as f:
        buf = []
        blen = 0

        def emit(line):
            nonlocal blen
            buf.append(line)
            blen += len(line) + 1

        while written + blen < size:
            sub += rng.expovariate(30.0)
            while sub >= 1.0:
                sub -= 1.0
                t += 1
                if t % 300 == 0:
                    emit("%s mx postfix/anvil[1300]: statistics: max connection rate 3/60s for (smtp:198.18.2.2) at %s" % (stamp(t), stamp(t - 120)))
            ts = stamp(t)
            pid = 2000 + (pid + 7) % 30000
            client = "smtp%d.%s[198.18.%d.%d]" % (rng.randrange(1, 9), rng.choice(DOMAINS), rng.randrange(0, 4), rng.randrange(1, 250))
            sender = "%s%d@%s" % (rng.choice(USERS), rng.randrange(100), rng.choice(DOMAINS))
            rcpt = "%s@corp.test" % rng.choice(USERS)
            ip = client.split("[")[1].rstrip("]")
            emit("%s mx postfix/postscreen[1190]: CONNECT from [%s]:%d to [198.18.0.1]:25" % (ts, ip, rng.randrange(1024, 65535)))
            if rng.random() < 0.01:
                emit("%s mx postfix/postscreen[1190]: DNSBL rank 3 for [%s]:%d" % (ts, ip, rng.randrange(1024, 65535)))
                emit("%s mx postfix/postscreen[1190]: NOQUEUE: reject: RCPT from [%s]:%d: 550 5.7.1 Service unavailable; client [%s] blocked using zen.example; from=<%s>, to=<%s>, proto=ESMTP, helo=<%s>" % (ts, ip, rng.randrange(1024, 65535), ip, sender, rcpt, client.split("[")[0]))
                emit("%s mx postfix/postscreen[1190]: DISCONNECT [%s]:%d" % (ts, ip, rng.randrange(1024, 65535)))
                continue
            emit("%s mx postfix/postscreen[1190]: PASS OLD [%s]:%d" % (ts, ip, rng.randrange(1024, 65535)))
            emit("%s mx postfix/smtpd[%d]: connect from %s" % (ts, pid, client))
            r = rng.random()
            if r < 0.04:
                emit("%s mx postfix/smtpd[%d]: NOQUEUE: reject: RCPT from %s: 554 5.7.1 <%s@other.example>: Relay access denied; from=<%s> to=<%s@other.example> proto=ESMTP helo=<%s>" % (ts, pid, client, rng.choice(USERS), sender, rng.choice(USERS), client.split("[")[0]))
                emit("%s mx postfix/smtpd[%d]: disconnect from %s ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4" % (ts, pid, client))
                continue
            q = qid()
            is_needle = not needle_done and written + blen >= needle_at
            mid = NEEDLE if is_needle else "<%x.%x@%s>" % (rng.getrandbits(48), rng.getrandbits(24), rng.choice(DOMAINS))
            nq = qid()
            emit("%s mx postfix/smtpd[%d]: Anonymous TLS connection established from %s: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" % (ts, pid, client))
            emit("%s mx postfix/smtpd[%d]: %s: client=%s" % (ts, pid, q, client))
            emit("%s mx postfix/cleanup[%d]: %s: message-id=%s" % (ts, pid + 3, q, mid))
            emit("%s mx postfix/qmgr[1201]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)" % (ts, q, sender, rng.randrange(900, 90000)))
            emit("%s mx postfix/smtpd[%d]: disconnect from %s ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7" % (ts, pid, client))
            r = rng.random()
            if is_needle or r < 0.03:
                emit("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=none, delay=5.1, delays=0.02/0/5/0, dsn=4.4.1, status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: Connection timed out)" % (stamp(t + 5), pid + 5, q, rcpt))
                pending.append((t + 60, q, rcpt, nq))
                if is_needle:
                    needle_done = True
                    print("needle message-id %s queue id %s" % (NEEDLE, q), file=sys.stderr)
            elif not is_needle and r < 0.14:
                # Content filter: out to 10024, back in on 10025 under a new queue id, then on.
                fq = qid()
                emit("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.3, delays=0.01/0/0.01/0.28, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as %s)" % (ts, pid + 5, q, rcpt, fq))
                emit("%s mx postfix/smtpd[%d]: connect from localhost[127.0.0.1]" % (ts, pid + 9))
                emit("%s mx postfix/smtpd[%d]: %s: client=localhost[127.0.0.1]" % (ts, pid + 9, fq))
                emit("%s mx postfix/cleanup[%d]: %s: message-id=%s" % (ts, pid + 3, fq, mid))
                emit("%s mx postfix/qmgr[1201]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)" % (ts, fq, sender, rng.randrange(900, 90000)))
                emit("%s mx postfix/smtpd[%d]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5" % (ts, pid + 9))
                emit("%s mx postfix/qmgr[1201]: %s: removed" % (ts, q))
                emit("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.%02d, delays=0.01/0/0.03/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as %s)" % (ts, pid + 5, fq, rcpt, rng.randrange(5, 99), nq))
                emit("%s mx postfix/qmgr[1201]: %s: removed" % (ts, fq))
            elif not is_needle and r < 0.19:
                # Local mailbox over LMTP: Dovecot logs the save with the session id.
                sess = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/") for _ in range(22))
                user = rcpt.split("@")[0]
                lp = 30000 + rng.randrange(1, 999)
                emit("%s mx dovecot: lmtp(%d): Connect from local" % (ts, lp))
                emit("%s mx dovecot: lmtp(%s)<%d><%s>: msgid=%s: saved mail to INBOX" % (ts, user, lp, sess, mid))
                emit("%s mx postfix/lmtp[%d]: %s: to=<%s>, relay=mx[private/dovecot-lmtp], delay=0.05, delays=0.01/0/0.01/0.03, dsn=2.0.0, status=sent (250 2.0.0 <%s> %s Saved)" % (ts, pid + 8, q, rcpt, rcpt, sess))
                emit("%s mx dovecot: lmtp(%d): Disconnect from local: Client has quit the connection (state=READY)" % (ts, lp))
                emit("%s mx postfix/qmgr[1201]: %s: removed" % (ts, q))
            elif r < 0.20:
                emit("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.12, delays=0.02/0/0.04/0.06, dsn=5.1.1, status=bounced (host 100.64.0.2[100.64.0.2] said: 550 5.1.1 <%s> User doesn't exist (in reply to RCPT TO command))" % (ts, pid + 5, q, rcpt, rcpt))
                emit("%s mx postfix/bounce[%d]: %s: sender non-delivery notification: %s" % (ts, pid + 6, q, qid()))
                emit("%s mx postfix/qmgr[1201]: %s: removed" % (ts, q))
            else:
                emit("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.%02d, delays=0.01/0/0.03/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as %s)" % (ts, pid + 5, q, rcpt, rng.randrange(5, 99), nq))
                emit("%s mx postfix/qmgr[1201]: %s: removed" % (ts, q))
            if rng.random() < 0.002:
                emit("%s mx postfix/smtpd[%d]: warning: hostname %s does not resolve to address 198.18.9.9" % (ts, pid, client.split("[")[0]))
            while pending and pending[0][0] <= t:
                _, pq, prcpt, pnq = pending.pop(0)
                emit("%s mx postfix/qmgr[1201]: %s: from=<retry@provider.test>, size=2000, nrcpt=1 (queue active)" % (ts, pq))
                emit("%s mx postfix/smtp[%d]: %s: to=<%s>, relay=100.64.0.2[100.64.0.2]:2525, delay=60, delays=60/0/0.04/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as %s)" % (ts, pid + 5, pq, prcpt, pnq))
                emit("%s mx postfix/qmgr[1201]: %s: removed" % (ts, pq))
            if blen > 1 << 22:
                f.write("\n".join(buf) + "\n")
                written += blen
                buf.clear()
                blen = 0
        if buf:
            f.write("\n".join(buf) + "\n")


main()
