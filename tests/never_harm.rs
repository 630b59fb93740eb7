//! Never harm, against the lab's real Dovecot: a seeded random mix of ordinary mail, forged and
//! transplanted tags, replayed copies of a real delivered probe, another installation's probes
//! and bounces quoting probes is appended into several folders of a mailbox no other test uses
//! (bob@corp.test), then several `flowtest run` invocations clean up at once. Afterwards every
//! planted message that is not a first copy of a real probe or bounce keeps its UID, flags,
//! content and folder, and each real probe (and the first bounce of a finished one) is gone,
//! exactly once. Set FLOWTEST_NEVER_HARM_SEED to replay a mix.
//!
//! Needs the lab up (`lab/up`); it applies no fault and tolerates other mail arriving, judging
//! only the messages it planted and the probes its own runs sent.
mod support;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use flowtest::core::probe::{ProbeKey, ProbeMessage, ProbeTag};
use serde_json::Value;
use support::flowtest::{flowtest, lab_scenario, only, Cfg};
use support::{describe, lab, Lab};

const USER: &str = "bob@corp.test";
const FOLDERS: [&str; 3] = ["INBOX", "Junk", "NeverHarm"];
const PROBE_DOMAIN: &str = "probe.corp.test";

/// A small deterministic generator (xorshift64*): the same seed plants the same mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a planted message is, and so what cleanup may do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Plant {
    Ordinary,
    /// The removed probe's genuine tag on a message with another Message-ID.
    Transplanted,
    /// The removed probe with its scenario altered: the signature no longer verifies.
    Altered,
    /// An unbound v1 tag.
    V1Tag,
    /// A byte copy of the probe already removed once.
    Replay,
    /// A probe signed by another installation's key.
    Foreign,
    /// A bounce quoting another installation's probe.
    ForeignBounce,
    /// A bounce quoting the removed (finished) probe: of all of them, exactly one goes.
    BounceOfFinished,
}

const KINDS: [Plant; 8] = [
    Plant::Ordinary,
    Plant::Transplanted,
    Plant::Altered,
    Plant::V1Tag,
    Plant::Replay,
    Plant::Foreign,
    Plant::ForeignBounce,
    Plant::BounceOfFinished,
];

/// One message as seen in a folder: flags, a hash of its content, and which planted message
/// it is (the number after the marker in `X-NH-Plant`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    flags: String,
    hash: u64,
    index: Option<usize>,
}

fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn header_block(raw: &str) -> &str {
    raw.split("\r\n\r\n").next().unwrap_or(raw)
}

fn dsn(marker: &str, quoted: &str) -> String {
    crlf(&format!(
        "From: MAILER-DAEMON@mx.corp.test\nTo: {USER}\nSubject: Undelivered Mail Returned to Sender\n\
         Message-ID: <{marker}@mx.corp.test>\nMIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n\
         --b\nContent-Type: text/plain\n\nI'm sorry.\n--b\nContent-Type: text/rfc822-headers\n\n\
         {}\n--b--\n",
        header_block(quoted)
    ))
}

/// The message to plant for `kind`; `marker` makes its own Message-IDs unique.
fn plant_text(kind: Plant, marker: &str, removed: &str, foreign: &str, rng: &mut Rng) -> String {
    let body = match kind {
        Plant::Ordinary => crlf(&format!(
            "From: friend{n}@example.test\nTo: {USER}\nSubject: hello {n}\n\
             Message-ID: <{marker}@friend.example>\n\nsee you at {n} o'clock\n",
            n = rng.below(1000)
        )),
        Plant::Transplanted => {
            let (head, rest) = removed.split_once("\r\n\r\n").unwrap();
            let moved: Vec<String> = head
                .split("\r\n")
                .map(|l| {
                    if l.to_ascii_lowercase().starts_with("message-id:") {
                        format!("Message-ID: <{marker}@friend.example>")
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            format!("{}\r\n\r\n{rest}", moved.join("\r\n"))
        }
        Plant::Altered => removed.replacen("X-Flowtest-Scenario: ", "X-Flowtest-Scenario: x", 1),
        Plant::V1Tag => crlf(&format!(
            "From: a@example.test\nSubject: old tag\nMessage-ID: <{marker}@old.example>\n\
             X-Flowtest-Id: 019ac9a4-6e3b-7c5e-9a1b-2c3d4e5f6a7b\nX-Flowtest-Scenario: s\n\
             X-Flowtest-Sent-At: 2020-01-01T00:00:00Z\nX-Flowtest-Rcpt: {USER}\n\
             X-Flowtest-Signature: v1=00ff\n\nold\n"
        )),
        Plant::Replay => removed.to_string(),
        Plant::Foreign => foreign.to_string(),
        Plant::ForeignBounce => dsn(marker, foreign),
        Plant::BounceOfFinished => dsn(marker, removed),
    };
    body
}

/// A probe of another installation (another key), addressed to the same mailbox.
fn foreign_probe() -> String {
    let key = ProbeKey::new(b"another installation's probe key").unwrap();
    let tag = ProbeTag::new(uuid::Uuid::now_v7(), "nh-foreign", flowtest::clock::now())
        .to(&[USER.into()]);
    let raw = ProbeMessage {
        tag: &tag,
        domain: PROBE_DOMAIN,
        header_from: "probe@provider.test",
        header_to: USER,
        extra_headers: &[],
    }
    .render(&key);
    String::from_utf8(raw).unwrap()
}

fn append(lab: &Lab, folder: &str, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.eml");
    std::fs::write(&file, text).unwrap();
    let out = lab.imap_curl(USER, folder, &["--upload-file", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "APPEND to {folder}: {}",
        describe(&out)
    );
}

/// Every message in `folder` answering `criteria`, by UID.
fn snapshot(lab: &Lab, folder: &str, marker: &str) -> BTreeMap<u32, Seen> {
    let criteria = format!("HEADER X-NH-Plant \"{marker}\"");
    let criteria = criteria.as_str();
    let mut uids = lab.imap_search(USER, folder, criteria).unwrap();
    uids.sort_unstable();
    if uids.is_empty() {
        return BTreeMap::new();
    }
    let flags = lab.imap_flags(USER, folder, &uids);
    let contents = lab.imap_fetch(USER, folder, &uids).unwrap();
    uids.iter()
        .zip(flags.into_iter().zip(contents))
        .map(|(uid, (flags, c))| {
            let mut h = std::hash::DefaultHasher::new();
            c.hash(&mut h);
            let tag = format!("X-NH-Plant: {marker} ");
            let index = c.find(&tag).and_then(|at| {
                let rest = &c[at + tag.len()..];
                rest[..rest.find(['\r', '\n']).unwrap_or(rest.len())]
                    .trim()
                    .parse()
                    .ok()
            });
            (
                *uid,
                Seen {
                    flags,
                    hash: h.finish(),
                    index,
                },
            )
        })
        .collect()
}

fn planted(lab: &Lab, marker: &str) -> BTreeMap<String, BTreeMap<u32, Seen>> {
    FOLDERS
        .iter()
        .map(|f| (f.to_string(), snapshot(lab, f, marker)))
        .collect()
}

/// UIDs of a probe (by id) in a folder.
fn probe_uids(lab: &Lab, folder: &str, probe_id: &str) -> Vec<u32> {
    lab.imap_search(
        USER,
        folder,
        &format!("HEADER X-Flowtest-Id \"{probe_id}\""),
    )
    .unwrap()
}

/// Every run reported the replays and transplanted tags it left, as counts and as warnings.
fn assert_reported(results: &[Value], seed: u64) {
    let replayed: u64 = results
        .iter()
        .map(|r| r["cleanup"]["replayed"].as_u64().unwrap_or(0))
        .sum();
    let forged: u64 = results
        .iter()
        .map(|r| r["cleanup"]["forged"].as_u64().unwrap_or(0))
        .sum();
    assert!(replayed >= 3, "seed {seed}: replays reported: {results:#?}");
    assert!(
        forged >= 3,
        "seed {seed}: transplanted tags reported: {results:#?}"
    );
    let warned = |needle: &str| {
        results.iter().any(|r| {
            r["warnings"].as_array().is_some_and(|w| {
                w.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.starts_with(needle)))
            })
        })
    };
    assert!(warned("probe_replayed: ") && warned("probe_forged: "));
}

/// A real delivered probe that its run (cleanup off) left in place.
struct KeptProbe {
    id: String,
    folder: String,
    uid: u32,
    raw: String,
}

fn kept_probe(lab: &Lab, cfg: &Cfg) -> KeptProbe {
    let r = run(lab, cfg, "nh-keep");
    let id = r["probe_id"].as_str().unwrap().to_string();
    let folder = r["folder"].as_str().unwrap().to_string();
    let uids = probe_uids(lab, &folder, &id);
    assert_eq!(uids.len(), 1, "the kept probe is there: {r:#}");
    let raw = crlf(&lab.imap_fetch(USER, &folder, &uids).unwrap()[0]);
    KeptProbe {
        id,
        folder,
        uid: uids[0],
        raw,
    }
}

fn run(lab: &Lab, cfg: &Cfg, name: &str) -> Value {
    let (out, v) = flowtest(lab, &cfg.path(), &[name]);
    let r = only(&v).clone();
    let status = r["status"].as_str().unwrap_or_default();
    assert!(
        matches!(status, "delivered" | "slow"),
        "{name}: {status}: {}",
        describe(&out)
    );
    r
}

fn scenario(name: &str, cleanup: bool) -> (String, String) {
    lab_scenario("lab-inbound.toml", name, |t| {
        let t = t
            .replace("alice@corp.test", USER)
            .replace(
                "folders = [\"INBOX\", \"Junk\"]",
                "folders = [\"INBOX\", \"Junk\", \"NeverHarm\"]",
            )
            .replacen(
                "\n[sender]",
                &format!("\ntimeout = \"20s\"\ncleanup = {cleanup}\n\n[sender]"),
                1,
            );
        assert!(t.contains("NeverHarm") && t.contains(USER), "{t}");
        t
    })
}

#[test]
fn cleanup_never_harms_planted_mail_and_removes_each_probe_once() {
    let lab = lab();
    let _g = lab.healthy();
    let seed: u64 = std::env::var("FLOWTEST_NEVER_HARM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let mut rng = Rng(seed | 1);
    let marker = support::token("nh");
    // The extra folder; it may exist from an earlier run.
    let _ = lab.imap_curl(USER, "", &["--request", "CREATE NeverHarm"]);

    let names = ["nh-keep", "nh-a", "nh-b", "nh-c"];
    let scenarios: Vec<(String, String)> =
        names.iter().map(|n| scenario(n, *n != "nh-keep")).collect();
    let refs: Vec<(&str, String)> = scenarios
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    let cfg = Cfg::new(&refs);

    // A real probe, left in place (cleanup off), copied, then removed by a cleaning run.
    let p1 = kept_probe(&lab, &cfg);
    let first = run(&lab, &cfg, "nh-a");
    assert_eq!(first["cleanup"]["deleted"], 1, "{first:#}");
    assert!(
        probe_uids(&lab, &p1.folder, &p1.id).is_empty(),
        "P1 removed"
    );
    let removed = p1.raw;
    // A second real probe, left in place with a replayed copy beside it (higher UID).
    let p2 = kept_probe(&lab, &cfg);
    append(
        &lab,
        &p2.folder,
        &format!("X-NH-Plant: {marker}\r\n{}", p2.raw),
    );

    // The mix: every kind once, then random ones, into random folders.
    let foreign = foreign_probe();
    let mut kinds: Vec<Plant> = KINDS.to_vec();
    for _ in 0..12 {
        kinds.push(KINDS[rng.below(KINDS.len())]);
    }
    let mut plan: Vec<(Plant, &str)> = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let folder = FOLDERS[rng.below(FOLDERS.len())];
        let body = plant_text(kind, &format!("{marker}-{i}"), &removed, &foreign, &mut rng);
        append(&lab, folder, &format!("X-NH-Plant: {marker} {i}\r\n{body}"));
        plan.push((kind, folder));
    }
    // Fetching marks messages \Seen: settle that before the snapshot that counts.
    let _ = planted(&lab, &marker);
    let before = planted(&lab, &marker);
    let planted_count: usize = before.values().map(BTreeMap::len).sum();
    assert_eq!(planted_count, plan.len() + 1, "seed {seed}: {before:?}");

    // Several invocations at once, each cleaning the same mailbox.
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = ["nh-a", "nh-b", "nh-c"]
            .iter()
            .map(|n| {
                let (lab, cfg) = (&lab, &cfg);
                s.spawn(move || run(lab, cfg, n))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        assert_eq!(
            r["cleanup"]["deleted"], 1,
            "each run removes its own: {r:#}"
        );
        let id = r["probe_id"].as_str().unwrap();
        let folder = r["folder"].as_str().unwrap();
        assert!(probe_uids(&lab, folder, id).is_empty(), "{id} left behind");
    }
    assert_reported(&results, seed);

    // P2: the original (lowest UID) removed, its replay kept.
    assert!(
        !probe_uids(&lab, &p2.folder, &p2.id).contains(&p2.uid),
        "seed {seed}: the second real probe was not removed"
    );
    let after = planted(&lab, &marker);
    // Every planted message is still there, unchanged, except exactly one bounce of the
    // finished probe.
    let mut gone = Vec::new();
    for (folder, msgs) in &before {
        for (uid, seen) in msgs {
            match after[folder].get(uid) {
                Some(now) => assert_eq!(now, seen, "seed {seed}: {folder} UID {uid} changed"),
                None => gone.push((folder.clone(), *uid)),
            }
        }
    }
    let bounces = plan
        .iter()
        .filter(|(k, _)| *k == Plant::BounceOfFinished)
        .count();
    assert!(bounces >= 1);
    assert_eq!(
        gone.len(),
        1,
        "seed {seed}: exactly one planted message (the first bounce of the finished probe) goes; \
         gone: {gone:?}"
    );
    let (folder, uid) = &gone[0];
    let index = before[folder][uid].index;
    assert_eq!(
        index.map(|i| plan[i].0),
        Some(Plant::BounceOfFinished),
        "seed {seed}: {folder} UID {uid} was removed: {:?}",
        index.map(|i| plan[i])
    );
    for (folder, msgs) in &after {
        let extra: Vec<_> = msgs
            .keys()
            .filter(|u| !before[folder].contains_key(u))
            .collect();
        assert!(
            extra.is_empty(),
            "seed {seed}: new planted UIDs in {folder}: {extra:?}"
        );
    }
    // Take the planted messages (and the second probe's replay) out again, so the mailbox does
    // not grow run after run.
    for (folder, msgs) in &after {
        remove_planted(&lab, folder, msgs.keys().copied().collect());
    }
}

fn remove_planted(lab: &Lab, folder: &str, uids: Vec<u32>) {
    if uids.is_empty() {
        return;
    }
    let set: Vec<String> = uids.iter().map(u32::to_string).collect();
    let set = set.join(",");
    for request in [
        format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
        format!("UID EXPUNGE {set}"),
    ] {
        let out = lab.imap_curl(USER, folder, &["--request", &request]);
        assert!(out.status.success(), "{request}: {}", describe(&out));
    }
}
