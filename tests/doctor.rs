//! `flowtest doctor` against scripted servers on 127.0.0.1: a DNS server answering the lab's
//! kinds of records (an MX, no MX, NXDOMAIN), SMTP servers with implicit TLS serving a good, an
//! expired and a wrong-name certificate made with `openssl` here, and the benign scripted IMAP
//! server. Each item ends as the operator's guide says, with its reason and fix, and the exit
//! code follows the worst item. Sends no mail (the SMTP servers see no MAIL command).
#[path = "support/hostile.rs"]
mod hostile;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, MX};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hostile::{imap, loopback_receiver, run_watched, ImapScript, KEY_ENV};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

/// A CA, and leaves signed by it: for localhost, for another name, and one that expired in 2024.
fn make_certs(dir: &Path) {
    let script = r#"set -euo pipefail
cd "$1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=doctor test CA" -keyout ca.key -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
leaf() { # NAME SAN
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
}
leaf good; leaf wrong; leaf expired
ext() { printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$1"; }
openssl x509 -req -in good.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile <(ext DNS:localhost,IP:127.0.0.1) -out good.pem 2>/dev/null
openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile <(ext DNS:other.test) -out wrong.pem 2>/dev/null
: > index; echo 1000 > serial
printf '[ca]\ndefault_ca = t\n[t]\ndatabase = index\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n[ext]\nsubjectAltName = DNS:localhost\nextendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n' > ca.cnf
openssl ca -batch -config ca.cnf -extensions ext -cert ca.pem -keyfile ca.key \
  -startdate 20240101000000Z -enddate 20240201000000Z -notext -in expired.csr -out expired.pem 2>/dev/null
"#;
    let out = Command::new("bash")
        .args(["-c", script, "certs"])
        .arg(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An SMTP server with implicit TLS serving `name`.pem; it greets, answers EHLO and QUIT.
fn tls_smtp(dir: &Path, name: &str) -> u16 {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                if tls.write_all(b"220 tls.test ESMTP\r\n").is_err() {
                    return;
                }
                let mut r = BufReader::new(tls);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let reply: &[u8] = match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                        Some("EHLO") => b"250-tls.test\r\n250-SIZE 1000000\r\n250 AUTH PLAIN\r\n",
                        Some("QUIT") => b"221 bye\r\n",
                        Some("MAIL") => panic!("doctor must send no mail"),
                        _ => b"502 no\r\n",
                    };
                    if r.get_mut().write_all(reply).is_err() || reply.starts_with(b"221") {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    port
}

/// A DNS server: corp.test has MX 10 mx.corp.test, nomx.test has only an A record, nope.test
/// does not exist, every other name has A 127.0.0.1. Returns its port and a flag that stops it.
fn dns() -> (u16, Arc<AtomicBool>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stopped.load(Ordering::Relaxed) {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut resp = Message::response(q.metadata.id, OpCode::Query);
            resp.metadata.authoritative = true;
            resp.metadata.recursion_desired = q.metadata.recursion_desired;
            resp.queries = q.queries.clone();
            if let Some(query) = q.queries.first() {
                let name = query.name().clone();
                let text = name.to_ascii().to_ascii_lowercase();
                let data = match (text.as_str(), query.query_type()) {
                    ("nope.test.", _) => {
                        resp.metadata.response_code = ResponseCode::NXDomain;
                        None
                    }
                    ("corp.test.", RecordType::MX) => Some(RData::MX(MX::new(
                        10,
                        Name::from_ascii("mx.corp.test.").unwrap(),
                    ))),
                    (_, RecordType::A) => Some(RData::A(A::new(127, 0, 0, 1))),
                    _ => None,
                };
                if let Some(d) = data {
                    resp.answers.push(Record::from_rdata(name, 60, d));
                }
            }
            let _ = sock.send_to(&resp.to_vec().unwrap(), peer);
        }
    });
    (port, stop)
}

fn scenario(name: &str, smtp_port: u16, rcpt: &str, imap_port: u16, ca: &Path) -> String {
    format!(
        r#"name = "{name}"
[sender]
kind = "smtp"
host = "localhost"
port = {smtp_port}
tls = "tls"
ca_file = {ca:?}
helo = "client.test"
mail_from = "probe@probe.test"
rcpt_to = "{rcpt}"
{}"#,
        loopback_receiver(imap_port, r#"["INBOX", "Junk"]"#)
    )
}

fn checks<'a>(v: &'a Value, scenario: &str, item: &str) -> Vec<&'a Value> {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["scenario"] == scenario && c["item"] == item)
        .collect()
}

fn one<'a>(v: &'a Value, scenario: &str, item: &str) -> &'a Value {
    let found = checks(v, scenario, item);
    assert_eq!(found.len(), 1, "{scenario} {item}: {found:?}");
    found[0]
}

/// Write flowtest.toml in `d` with the given `[doctor]` lines, run `flowtest doctor --format json`
/// (killed past `limit`) and return the run and its JSON.
fn run_doctor(d: &Path, doctor: &str, limit: Duration) -> (hostile::Watched, Value) {
    std::fs::write(
        d.join("flowtest.toml"),
        format!(
            "state_dir = {:?}\n[probe]\ndomain = \"probe.test\"\nkey_env = \"{}\"\n[doctor]\n{doctor}",
            d.join("state").display().to_string(),
            KEY_ENV.0
        ),
    )
    .unwrap();
    let run = run_watched(
        &d.join("flowtest.toml"),
        &["doctor", "--format", "json"],
        limit,
    );
    let v = serde_json::from_slice(&run.output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&run.output.stdout),
            String::from_utf8_lossy(&run.output.stderr)
        )
    });
    (run, v)
}

#[test]
fn doctor_judges_dns_tls_smtp_and_imap_items_with_their_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certs(d);
    let (dns_port, stop_dns) = dns();
    let imap_port = imap(ImapScript::Benign);
    let ca = d.join("ca.pem");
    std::fs::create_dir(d.join("scenarios")).unwrap();
    for (name, cert, rcpt) in [
        ("good", "good", "alice@corp.test"),
        ("expired", "expired", "bob@nomx.test"),
        ("wrong-name", "wrong", "x@nope.test"),
    ] {
        let port = tls_smtp(d, cert);
        std::fs::write(
            d.join(format!("scenarios/{name}.toml")),
            scenario(name, port, rcpt, imap_port, &ca),
        )
        .unwrap();
    }
    let doctor = format!(
        "nameserver = \"127.0.0.1:{dns_port}\"\ncheck_timeout = \"3s\"\ncert_warn_days = 40\n\
         [doctor.expected_mx]\n\"corp.test\" = [\"mx.corp.test\"]\n"
    );
    let (run, v) = run_doctor(d, &doctor, Duration::from_secs(60));
    stop_dns.store(true, Ordering::Relaxed);

    // DNS: the expected MX passes; no MX is the RFC 5321 fallback; NXDOMAIN is explained.
    let mx = one(&v, "good", "dns-mx");
    assert_eq!(
        (mx["status"].as_str(), mx["detail"].as_str()),
        (Some("pass"), Some("MX 10 mx.corp.test"))
    );
    let nomx = one(&v, "expired", "dns-mx");
    assert_eq!(nomx["status"], "warn", "{nomx}");
    assert!(
        nomx["detail"]
            .as_str()
            .unwrap()
            .contains("fall back to its A/AAAA address (127.0.0.1)"),
        "{nomx}"
    );
    let nx = one(&v, "wrong-name", "dns-mx");
    assert_eq!(nx["status"], "fail");
    assert!(nx["detail"].as_str().unwrap().contains("NXDOMAIN"), "{nx}");
    assert!(nx["hint"].as_str().unwrap().contains("delegation"), "{nx}");
    // Every host is resolved, the MX exchanger too (hickory answers `localhost` itself,
    // RFC 6761, with both loopback addresses).
    let addrs = checks(&v, "good", "dns-address");
    let target = |t: &str| {
        *addrs
            .iter()
            .find(|c| c["target"] == t)
            .unwrap_or_else(|| panic!("{t}: {addrs:?}"))
    };
    assert!(
        target("localhost")["detail"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1"),
        "{addrs:?}"
    );
    assert_eq!(target("mx.corp.test")["detail"], "127.0.0.1");

    // TLS: good passes with the facts (warned: it expires within cert_warn_days = 40);
    // expired and wrong-name fail with their reason and fix, and nothing after them is claimed.
    let good = checks(&v, "good", "tls");
    let good = good.first().expect("a tls item");
    assert_eq!(good["status"], "warn", "{good}");
    let gd = good["detail"].as_str().unwrap();
    assert!(
        gd.contains("TLSv1.3")
            && gd.contains("names localhost 127.0.0.1")
            && gd.contains("CN=good"),
        "{gd}"
    );
    assert!(good["hint"].as_str().unwrap().contains("renew"), "{good}");
    let expired = one(&v, "expired", "tls");
    assert_eq!(expired["status"], "fail");
    assert!(
        expired["detail"]
            .as_str()
            .unwrap()
            .starts_with("certificate expired"),
        "{expired}"
    );
    assert!(
        expired["hint"].as_str().unwrap().contains("has expired"),
        "{expired}"
    );
    assert_eq!(one(&v, "expired", "smtp-banner")["status"], "unknown");
    let wrong = one(&v, "wrong-name", "tls");
    assert_eq!(wrong["status"], "fail");
    assert!(
        wrong["detail"]
            .as_str()
            .unwrap()
            .starts_with("certificate is not valid for localhost"),
        "{wrong}"
    );
    assert!(
        wrong["detail"]
            .as_str()
            .unwrap()
            .contains("names other.test"),
        "{wrong}"
    );

    // SMTP over the good certificate: banner and EHLO capabilities.
    assert_eq!(
        one(&v, "good", "smtp-banner")["detail"],
        "220 tls.test ESMTP"
    );
    assert_eq!(
        one(&v, "good", "smtp-ehlo")["detail"],
        "SIZE 1000000, AUTH PLAIN"
    );
    let tcp = checks(&v, "good", "tcp");
    assert!(
        tcp.iter()
            .all(|c| c["status"] == "pass" && c["ms"].is_u64()),
        "{tcp:?}"
    );

    // IMAP: login, capabilities, folders.
    assert_eq!(one(&v, "good", "imap-login")["status"], "pass");
    let caps = one(&v, "good", "imap-capabilities");
    assert_eq!(
        caps["detail"],
        "IDLE yes, UIDPLUS yes, SPECIAL-USE no, CONDSTORE no"
    );
    assert_eq!(
        one(&v, "good", "imap-folders")["detail"],
        "INBOX, Junk exist"
    );

    assert_eq!(v["summary"]["state"], "CRITICAL");
    assert_eq!(run.output.status.code(), Some(2), "a failed item exits 2");
}

#[test]
fn every_check_has_its_own_timeout() {
    // A DNS server that never answers and an SMTP server that never greets: each item ends
    // by the check timeout, and the whole run stays within a few of them.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let silent_dns = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_port = silent_dns.local_addr().unwrap().port();
    let smtp_port = hostile::smtp(hostile::SmtpScript::SilentAfterConnect);
    let imap_port = imap(ImapScript::SilentLogin);
    std::fs::create_dir(d.join("scenarios")).unwrap();
    let s = scenario(
        "silent",
        smtp_port,
        "a@corp.test",
        imap_port,
        Path::new("/nonexistent"),
    )
    .replace(
        "tls = \"tls\"\nca_file = \"/nonexistent\"\n",
        "tls = \"none\"\nallow_plaintext = true\n",
    );
    std::fs::write(d.join("scenarios/silent.toml"), s).unwrap();
    let doctor = format!("nameserver = \"127.0.0.1:{dns_port}\"\ncheck_timeout = \"1s\"\n");
    let (run, v) = run_doctor(d, &doctor, Duration::from_secs(30));
    assert!(run.took < Duration::from_secs(15), "took {:?}", run.took);
    let mx = one(&v, "silent", "dns-mx");
    assert_eq!(mx["status"], "fail");
    assert!(mx["detail"].as_str().unwrap().contains("failed"), "{mx}");
    let banner = one(&v, "silent", "smtp-banner");
    assert_eq!(banner["status"], "fail");
    assert!(
        banner["detail"]
            .as_str()
            .unwrap()
            .contains("no answer within"),
        "{banner}"
    );
    let login = one(&v, "silent", "imap-login");
    assert_eq!(login["status"], "fail");
    assert!(
        login["detail"].as_str().unwrap().contains("timeout"),
        "{login}"
    );
    assert_eq!(run.output.status.code(), Some(2));
}
