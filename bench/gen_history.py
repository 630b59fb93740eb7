#!/usr/bin/env python3
"""Generate a result store for the report benchmark (bench/report_10m.sh).

  gen_history.py STATE_DIR SCENARIOS DAYS [EVERY_SECONDS=60]

writes STATE_DIR/flowtest.db: SCENARIOS scenarios probed every EVERY_SECONDS for DAYS days
ending 2026-11-29T00:00:00Z (20 scenarios, 365 days, 60 s: 10,512,000 rows), in the store's
schema 3 (src/edge/store/sqlite.rs: the `results` table with `location`, its indexes,
user_version 3).
Each row has a result JSON shaped like `flowtest run --format json`'s (five stages, findings on
failures, slo, timeout_ms) but without hops, submission and skew, to keep 10 M rows near 8 GB.
About 0.2 % of probes are lost in one-hour outages, 0.5 % are slow, 0.3 % go to spam, a few are
late, interrupted or errors.
"""
import sqlite3
import sys
from datetime import datetime, timedelta, timezone

SCHEMA = """
CREATE TABLE results (
    probe_id TEXT PRIMARY KEY, scenario TEXT NOT NULL, status TEXT NOT NULL, sent_at TEXT NOT NULL,
    finished_at TEXT, total_ms INTEGER, result_json TEXT, late_detected_at TEXT, late_total_ms INTEGER,
    deleted_at TEXT, deleted_folder TEXT, deleted_uidvalidity INTEGER, deleted_uid INTEGER,
    bounce_deleted_at TEXT, bounce_deleted_folder TEXT, bounce_deleted_uidvalidity INTEGER,
    bounce_deleted_uid INTEGER, location TEXT NOT NULL DEFAULT 'default');
PRAGMA user_version = 3;
"""
STAGES = ["submission", "ec2-mx", "tailscale-relay", "dovecot-lmtp", "detect"]
HINT = "The next hop does not answer: check the Tailscale link, then postqueue -f on the host."


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")


STAGE = '{"name":"%s","ms":%d,"source":"%s","precision_ms":1,"bounded":false,"detail":null}'
FINDING = ('{"code":"next_hop_timeout","stage":"ec2","host":"ec2","message_id":null,'
           '"message":"connect to 100.64.0.2[100.64.0.2]:2525: Connection timed out",'
           '"evidence":[],"hint":"' + HINT + '","count":1,"first_seen":null,"last_seen":null}')
RESULT = ('{"scenario":"%s","probe_id":"%s","status":"%s","sent_at":"%s","total_ms":%s,'
          '"folder":%s,"stages":[%s],"findings":[%s],"missing_stages":[],"log_status":null,'
          '"last_hop":null,"notes":[],"slo":{"target_ms":5000,"max_ms":60000},'
          '"timeout_ms":300000,"warnings":[]}')


def row(scn, n, t, sent, rnd, outage):
    """One row; built from string templates (json.dumps per row would dominate the time)."""
    pid = "%s-%08d" % (scn, n)
    total = 400 + rnd % 600 + (rnd % 7) * 13
    status, late, findings = "delivered", None, ""
    if outage:
        status, total, findings = "lost", None, FINDING
        if rnd % 5 == 0:
            late = (ts(t + timedelta(minutes=9)), 540000)
    elif rnd % 997 == 3:
        status, total = "interrupted", None
    elif rnd % 1999 == 5:
        status, total = "error", None
    elif rnd % 200 == 7:
        status, total = "slow", 6000 + rnd % 4000
    elif rnd % 331 == 11:
        status = "delivered_spam"
    stages = ""
    if total is not None:
        parts = [30 + rnd % 20, total // 10, total // 5, total // 20]
        parts.append(max(0, total - sum(parts)))
        stages = ",".join(STAGE % (s, ms, "client" if s in ("submission", "detect") else "log")
                          for s, ms in zip(STAGES, parts))
    result = RESULT % (scn, pid, status, sent, "null" if total is None else total,
                       '"INBOX"' if total else "null", stages, findings)
    return (pid, scn, status, sent, sent, total, result,
            late[0] if late else None, late[1] if late else None)


def main():
    state, scenarios, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    every = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    end = datetime(2026, 11, 29, tzinfo=timezone.utc)
    start = end - timedelta(days=days)
    db = sqlite3.connect(state + "/flowtest.db")
    db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;" + SCHEMA)
    per = days * 86400 // every
    rnd = 12345
    for s in range(scenarios):
        scn = "scenario-%02d" % s
        batch = []
        for n in range(per):
            rnd = (rnd * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            r = rnd >> 33
            t = start + timedelta(seconds=n * every)
            sent = ts(t)
            # One hour-long outage every ~20 days per scenario, at a scenario-specific hour.
            day, hour = divmod(n * every // 3600, 24)
            outage = day % 20 == s % 20 and hour == (s * 5) % 24
            batch.append(row(scn, n, t, sent, r, outage))
            if len(batch) >= 50000:
                db.executemany("INSERT INTO results (probe_id, scenario, status, sent_at, finished_at,"
                               " total_ms, result_json, late_detected_at, late_total_ms)"
                               " VALUES (?,?,?,?,?,?,?,?,?)", batch)
                batch = []
        if batch:
            db.executemany("INSERT INTO results (probe_id, scenario, status, sent_at, finished_at,"
                           " total_ms, result_json, late_detected_at, late_total_ms)"
                           " VALUES (?,?,?,?,?,?,?,?,?)", batch)
        db.commit()
        print("scenario %d/%d written" % (s + 1, scenarios), file=sys.stderr)
    # The index last: one sort instead of ten million ordered inserts.
    db.execute("CREATE INDEX results_by_scenario ON results(scenario, sent_at)")
    db.execute("CREATE INDEX results_by_location ON results(scenario, location, sent_at)")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


if __name__ == "__main__":
    main()
