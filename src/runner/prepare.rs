//! Resolving a scenario before any probe is sent: secrets read, CA files parsed, the real edges
//! built. Everything that could stop flowtest from running at all fails here, so a run never
//! half-starts. Not here: any network connection.
use std::sync::Arc;

use super::adapters::{ImapAccount, SendGridProbeSender, SmtpProbeSender};
use super::ports::{MailboxAccess, ProbeSender};
use crate::config::{Receiver, Scenario, Sender, SmtpSender};
use crate::edge::imap::SharedMailbox;
use crate::edge::smtp::SmtpPool;
use crate::edge::{imap, sendgrid, smtp, tls};

/// A scenario with everything it needs resolved, and the edges that send and receive its probe.
pub struct Prepared {
    pub scenario: Scenario,
    pub(super) sender: Arc<dyn ProbeSender>,
    pub(super) mailbox: Arc<dyn MailboxAccess>,
}

impl Prepared {
    /// A scenario with given edges (fakes in tests; [`prepare`] builds the real ones).
    pub fn with_edges(
        scenario: Scenario,
        sender: Arc<dyn ProbeSender>,
        mailbox: Arc<dyn MailboxAccess>,
    ) -> Prepared {
        Prepared {
            scenario,
            sender,
            mailbox,
        }
    }

    /// Close what its sender keeps open between probes (see [`ProbeSender::close`]).
    pub async fn close(&self) {
        self.sender.close().await;
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("scenario", &self.scenario.name)
            .finish_non_exhaustive()
    }
}

/// Resolve a scenario's secrets and CA files. The error is one line naming what is missing
/// (a variable's name or a file's path, never a value). Its mailbox session is its own.
pub fn prepare(s: &Scenario) -> Result<Prepared, String> {
    prepare_sharing(s, &mut Shared::default())
}

/// What the scenarios of one run share: mailbox sessions, and connections to submission
/// servers.
#[derive(Default)]
struct Shared {
    sessions: Vec<Arc<SharedMailbox>>,
    pools: Vec<(SmtpSender, Arc<SmtpPool>)>,
}

/// [`prepare`] every scenario of one run: the scenarios that watch the same mailbox share one
/// session (see [`same_mailbox`]), those that submit to the same server the same way share its
/// connections (see [`same_submission`]).
pub fn prepare_all<'s>(
    scenarios: impl IntoIterator<Item = &'s Scenario>,
) -> Result<Vec<Prepared>, String> {
    let mut shared = Shared::default();
    scenarios
        .into_iter()
        .map(|s| prepare_sharing(s, &mut shared))
        .collect()
}

/// Whether two SMTP senders can share connections: the same server, port, TLS and CA, EHLO
/// name, credentials and command timeout. The envelope and headers are each transaction's.
fn same_submission(a: &SmtpSender, b: &SmtpSender) -> bool {
    let same_auth = match (&a.auth, &b.auth) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x.username == y.username && x.password == y.password && x.mechanism == y.mechanism
        }
        _ => false,
    };
    a.host == b.host
        && a.port == b.port
        && a.tls == b.tls
        && a.ca_file == b.ca_file
        && a.helo == b.helo
        && same_auth
        && a.command_timeout == b.command_timeout
}

/// Whether two receivers name the same mailbox session: the same server, port, TLS and CA,
/// user, credentials, mechanism, watched folders and IDLE use. Poll interval and junk folders
/// are how a scenario reads what the session sees, not the session.
fn same_mailbox(a: &Receiver, b: &Receiver) -> bool {
    a.host == b.host
        && a.port == b.port
        && a.tls == b.tls
        && a.ca_file == b.ca_file
        && a.username == b.username
        && a.password == b.password
        && a.mechanism == b.mechanism
        && a.folders == b.folders
        && a.idle == b.idle
}

fn prepare_sharing(s: &Scenario, shared: &mut Shared) -> Result<Prepared, String> {
    let ctx = |m: String| format!("scenario {}: {m}", s.name);
    let recv_ca = match &s.receiver.ca_file {
        Some(p) => tls::read_ca(p).map_err(|e| ctx(e.to_string()))?,
        None => Vec::new(),
    };
    let imap = imap::Prepared {
        tls: tls::client_config(&recv_ca).map_err(|e| ctx(e.to_string()))?,
        password: s
            .receiver
            .password
            .resolve()
            .map_err(|e| ctx(format!("receiver password: {e}")))?,
    };
    let session = match shared
        .sessions
        .iter()
        .find(|m| same_mailbox(m.receiver(), &s.receiver))
    {
        Some(m) => Arc::clone(m),
        None => {
            let m = Arc::new(SharedMailbox::new(s.receiver.clone(), imap));
            shared.sessions.push(Arc::clone(&m));
            m
        }
    };
    let sender: Arc<dyn ProbeSender> = match &s.sender {
        Sender::Smtp(cfg) => {
            let ca_pem = match &cfg.ca_file {
                Some(p) => {
                    // Read once, capped; parsed here so a bad file stops the run before sending.
                    let pem = tls::read_ca_pem(p).map_err(|e| ctx(e.to_string()))?;
                    tls::parse_ca(&pem, p).map_err(|e| ctx(e.to_string()))?;
                    Some(pem)
                }
                None => None,
            };
            let password = match &cfg.auth {
                Some(a) => Some(
                    a.password
                        .resolve()
                        .map_err(|e| ctx(format!("sender password: {e}")))?,
                ),
                None => None,
            };
            let pool = match shared.pools.iter().find(|(c, _)| same_submission(c, cfg)) {
                Some((_, p)) => Arc::clone(p),
                None => {
                    let p = Arc::new(SmtpPool::default());
                    shared.pools.push((cfg.clone(), Arc::clone(&p)));
                    p
                }
            };
            Arc::new(SmtpProbeSender {
                cfg: cfg.clone(),
                prepared: smtp::Prepared { ca_pem, password },
                pool,
            })
        }
        Sender::SendGrid(cfg) => {
            let ca = match &cfg.ca_file {
                Some(p) => tls::read_ca(p).map_err(|e| ctx(e.to_string()))?,
                None => Vec::new(),
            };
            let key = cfg
                .api_key
                .resolve()
                .map_err(|e| ctx(format!("SendGrid API key: {e}")))?;
            Arc::new(SendGridProbeSender {
                cfg: cfg.clone(),
                prepared: sendgrid::prepare(cfg, &ca, key).map_err(ctx)?,
            })
        }
    };
    Ok(Prepared {
        scenario: s.clone(),
        sender,
        mailbox: Arc::new(ImapAccount { shared: session }),
    })
}
