//! The IMAP mailbox a scenario watches, as `doctor` sees it: TCP connect time, the TLS handshake
//! and certificate, LOGIN (through the probe's own `edge::imap::login`), the capabilities
//! flowtest relies on and whether each watched folder exists (EXAMINE: read-only, no flag
//! changes). Reads no message.
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;

use super::tls::Recorder;
use super::{elapsed_ms, Ctx, Pending};
use crate::config::{Receiver, TlsMode};
use crate::core::doctor::hints::Hint;
use crate::core::doctor::judge;
use crate::core::doctor::Judgement;
use crate::core::doctor::{Check, Item, Status};
use crate::edge::imap::{login, FetchError, Prepared};

pub async fn check(
    ctx: &Ctx<'_>,
    r: &Receiver,
    extra_ca: &[CertificateDer<'static>],
    out: &mut Vec<Check>,
) {
    let target = format!("{}:{}", r.host, r.port);
    let mut todo = Pending::new(ctx, &target, out);
    todo.expect(&[Item::Tcp]);
    if r.tls != TlsMode::None {
        todo.expect(&[Item::Tls]);
    }
    todo.expect(&[Item::ImapLogin, Item::ImapCapabilities, Item::ImapFolders]);

    let started = crate::clock::instant();
    match ctx
        .bounded(TcpStream::connect((r.host.as_str(), r.port)))
        .await
    {
        Some(Ok(_)) => todo.report(Item::Tcp, Judgement::pass("connected"), elapsed_ms(started)),
        other => {
            let why = match other {
                Some(Err(e)) => e.to_string(),
                _ => format!("no connection within {:.1} s", ctx.timeout.as_secs_f64()),
            };
            let j = Judgement::with(Status::Fail, why, Hint::Unreachable.text());
            todo.report(Item::Tcp, j, elapsed_ms(started));
            return todo.skip_rest("TCP connect failed");
        }
    }
    let password = match r.password.resolve() {
        Ok(p) => p,
        Err(e) => {
            // The error names the variable or file, never a value.
            let j = Judgement::with(
                Status::Fail,
                format!("password: {e}"),
                Hint::ImapSession.text(),
            );
            todo.report(Item::ImapLogin, j, None);
            return todo.skip_rest("no password");
        }
    };
    let recorder = match Recorder::new(extra_ca) {
        Ok(rec) => rec,
        Err(e) => {
            todo.report(
                Item::Tls,
                judge::tls_failed(&e.to_string(), ctx.runbook),
                None,
            );
            return todo.skip_rest("no TLS configuration");
        }
    };
    let prep = Prepared {
        tls: recorder.config.clone(),
        password,
    };
    todo.recorder = Some(recorder);
    let started = crate::clock::instant();
    let session = login(r, &prep, ctx.deadline()).await;
    let ms = elapsed_ms(started);
    if r.tls != TlsMode::None {
        let tls_err = match &session {
            Err(FetchError::Tls(m)) => Some(m.clone()),
            Err(FetchError::Timeout(m)) if m.starts_with("TLS") || m.starts_with("STARTTLS") => {
                Some(m.clone())
            }
            _ => None,
        };
        // A connection that failed never reached the handshake: TLS is then "not checked".
        let not_reached = match &session {
            Err(FetchError::Connect(_)) => true,
            Err(FetchError::Timeout(m)) => m.starts_with("connect"),
            _ => false,
        };
        if !not_reached {
            let j = todo.tls(&r.host, tls_err.as_deref());
            todo.report(Item::Tls, j, None);
        }
        if tls_err.is_some() {
            return todo.skip_rest("TLS handshake failed");
        }
    }
    let mut session = match session {
        Ok(s) => {
            todo.report(
                Item::ImapLogin,
                Judgement::pass(format!("logged in as {}", r.username)),
                ms,
            );
            s
        }
        Err(e) => {
            let credentials = matches!(e, FetchError::Auth(_));
            todo.report(
                Item::ImapLogin,
                judge::imap_login_failed(&e.to_string(), credentials, ctx.runbook),
                ms,
            );
            return todo.skip_rest("login failed");
        }
    };

    let started = crate::clock::instant();
    let j = match ctx.bounded(session.capabilities()).await {
        Some(Ok(caps)) => judge::imap_capabilities(|c| caps.has_str(c), r.idle),
        Some(Err(e)) => Judgement::with(
            Status::Fail,
            format!("CAPABILITY: {e}"),
            Hint::ImapSession.text(),
        ),
        None => Judgement::with(
            Status::Fail,
            "CAPABILITY: no answer in time",
            Hint::ImapSession.text(),
        ),
    };
    todo.report(Item::ImapCapabilities, j, elapsed_ms(started));

    let started = crate::clock::instant();
    let mut missing = Vec::new();
    let mut failure = None;
    for f in &r.folders {
        match ctx.bounded(session.examine(f)).await {
            Some(Ok(_)) => {}
            Some(Err(async_imap::error::Error::No(_))) => missing.push(f.clone()),
            Some(Err(e)) => {
                failure = Some(format!("EXAMINE {f}: {e}"));
                break;
            }
            None => {
                failure = Some(format!("EXAMINE {f}: no answer in time"));
                break;
            }
        }
    }
    let j = match failure {
        Some(why) => Judgement::with(Status::Fail, why, Hint::ImapSession.text()),
        None => judge::folders(&r.folders, &missing),
    };
    todo.report(Item::ImapFolders, j, elapsed_ms(started));
    let _ = ctx.bounded(session.logout()).await;
}
