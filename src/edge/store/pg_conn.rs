//! The PostgreSQL connection behind the store: one thread owns the client, on its own
//! single-threaded tokio runtime, and runs the store's operations one at a time, sent to it
//! over a channel; the caller waits for the answer, bounded.
//!
//! Why a thread: the runner's `ResultStore` port is synchronous and is called from async code
//! (as SQLite is). Blocking on a client inside the caller's runtime panics (`block_on` within a
//! runtime), and making the port async would change the runner, its fakes and every caller. A
//! thread that owns the connection keeps the port as it is: a call blocks its caller for a bounded time
//! (its attempts, each bounded, and their pauses), like SQLite's busy timeout, and never the store's own runtime.
//!
//! Connection loss: an operation that fails because the connection broke (or timed out) is run
//! again on a new connection, up to [`ATTEMPTS`] times with a short backoff; every operation the
//! store sends is safe to repeat (inserts are `ON CONFLICT`, updates are guarded by the state
//! they change). What still fails comes back as an error, which the runner reports as "this
//! result was not stored". Not here: the SQL (`postgres`).
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::config::SslMode;
use tokio_postgres::Client;

use super::StoreError;
use crate::config::store::{PgTls, PostgresConfig};
use crate::edge::tls;

/// How often an operation is tried when the connection breaks under it.
pub(super) const ATTEMPTS: u32 = 3;
/// Bound on one statement (or one batch of a scan) once connected.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between attempts.
const BACKOFF: Duration = Duration::from_millis(300);
/// Rows a scan hands over ahead of its consumer.
const SCAN_BUFFER: usize = 256;

/// A future run on the connection thread (which is single-threaded: it need not be `Send`).
pub(super) type PgFuture<'c, T> =
    Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + 'c>>;

/// Work for the connection thread.
type Job = Box<dyn for<'w> FnOnce(&'w mut Worker) -> Pin<Box<dyn Future<Output = ()> + 'w>> + Send>;

/// The handle the store holds: sends operations to the connection thread.
pub(super) struct PgConn {
    jobs: mpsc::UnboundedSender<Job>,
    store: String,
    call_timeout: Duration,
}

/// The connection thread's state.
struct Worker {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    store: String,
    client: Option<Client>,
}

impl PgConn {
    /// Resolve the password and TLS settings and start the connection thread. Connecting happens
    /// with the first operation.
    pub(super) fn start(cfg: &PostgresConfig) -> Result<PgConn, StoreError> {
        let store = cfg.url.clone();
        let mut config: tokio_postgres::Config =
            cfg.url.parse().map_err(|source| StoreError::Postgres {
                store: store.clone(),
                source,
            })?;
        config.connect_timeout(cfg.connect_timeout);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("flowtest");
        if let Some(secret) = &cfg.password {
            let password = secret.resolve().map_err(|source| StoreError::Password {
                store: store.clone(),
                source,
            })?;
            config.password(password.expose());
        }
        let tls = match &cfg.tls {
            PgTls::Disable => {
                config.ssl_mode(SslMode::Disable);
                None
            }
            PgTls::VerifyFull { ca_file } => {
                config.ssl_mode(SslMode::Require);
                let tls_err = |source| StoreError::Tls {
                    store: store.clone(),
                    source,
                };
                let extra = match ca_file {
                    Some(p) => tls::read_ca(p).map_err(tls_err)?,
                    None => Vec::new(),
                };
                let client = tls::client_config(&extra).map_err(tls_err)?;
                Some(tokio_postgres_rustls::MakeRustlsConnect::new(
                    (*client).clone(),
                ))
            }
        };
        let (jobs, rx) = mpsc::unbounded_channel();
        let worker = Worker {
            config,
            tls,
            store: store.clone(),
            client: None,
        };
        std::thread::Builder::new()
            .name("flowtest-store".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| StoreError::Unavailable {
                store: store.clone(),
                reason: format!("cannot start the connection thread: {e}"),
            })?;
        // Attempts, each bounded by connecting and by a statement, with the pauses between.
        let call_timeout =
            (cfg.connect_timeout + STATEMENT_TIMEOUT + BACKOFF) * ATTEMPTS + Duration::from_secs(1);
        Ok(PgConn {
            jobs,
            store,
            call_timeout,
        })
    }

    pub(super) fn store(&self) -> &str {
        &self.store
    }

    fn unavailable(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            store: self.store.clone(),
            reason: reason.into(),
        }
    }

    /// Run `op` on the connection and wait for its answer (bounded). `op` may run more than once
    /// if the connection breaks under it.
    pub(super) fn call<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut Client) -> PgFuture<'c, T> + Send + 'static,
    {
        let (tx, rx) = std_mpsc::sync_channel(1);
        let abandoned = Arc::new(AtomicBool::new(false));
        let gone = Arc::clone(&abandoned);
        let job: Job = Box::new(move |w: &mut Worker| {
            Box::pin(async move {
                // A caller that gave up has reported the operation as failed: do not run it late.
                if gone.load(Ordering::SeqCst) {
                    return;
                }
                let _ = tx.send(w.attempt(&op).await);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| self.unavailable("the connection thread has stopped"))?;
        match rx.recv_timeout(self.call_timeout) {
            Ok(r) => r,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                abandoned.store(true, Ordering::SeqCst);
                Err(self.unavailable(format!(
                    "no answer within {} s",
                    self.call_timeout.as_secs()
                )))
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                Err(self.unavailable("the connection thread has stopped"))
            }
        }
    }

    /// Run `producer` on the connection; each item it sends reaches `each` here, in order, with
    /// at most [`SCAN_BUFFER`] items in between. `each` returning `Break` stops the producer
    /// (its sends fail). Not retried: items already handed over cannot be taken back.
    pub(super) fn stream<R, F>(
        &self,
        producer: F,
        each: &mut dyn FnMut(R) -> ControlFlow<()>,
    ) -> Result<(), StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut Client, std_mpsc::SyncSender<R>) -> PgFuture<'c, ()>
            + Send
            + 'static,
    {
        let (items_tx, items) = std_mpsc::sync_channel::<R>(SCAN_BUFFER);
        let (done_tx, done) = std_mpsc::sync_channel::<Result<(), StoreError>>(1);
        let job: Job = Box::new(move |w: &mut Worker| {
            Box::pin(async move {
                let r = match w.client().await {
                    Ok(c) => match producer(c, items_tx).await {
                        Ok(()) => Ok(()),
                        Err(e) => Err(w.failed(e)),
                    },
                    Err(e) => Err(e),
                };
                let _ = done_tx.send(r);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| self.unavailable("the connection thread has stopped"))?;
        loop {
            match items.recv_timeout(self.call_timeout) {
                Ok(item) => {
                    if each(item).is_break() {
                        // Dropping the receiver ends the producer at its next send.
                        drop(items);
                        return done
                            .recv_timeout(self.call_timeout)
                            .map(|_| ())
                            .map_err(|_| self.unavailable("no answer after the scan stopped"));
                    }
                }
                // The producer is done (its sender dropped): its result says how.
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    return done
                        .recv_timeout(self.call_timeout)
                        .map_err(|_| self.unavailable("the connection thread has stopped"))?;
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    return Err(self
                        .unavailable(format!("no rows within {} s", self.call_timeout.as_secs())))
                }
            }
        }
    }
}

impl Worker {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, store = %self.store, "store runtime did not start");
                return;
            }
        };
        // Ends when every handle is gone (the store was dropped).
        rt.block_on(async {
            while let Some(job) = rx.recv().await {
                job(&mut self).await;
            }
        });
    }

    /// The live client, connecting first if there is none.
    async fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            let client = self.connect().await?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let err = |source| StoreError::Postgres {
            store: self.store.clone(),
            source,
        };
        let client = match &self.tls {
            Some(tls) => {
                let (client, conn) = self.config.connect(tls.clone()).await.map_err(err)?;
                tokio::spawn(drive(conn, self.store.clone()));
                client
            }
            None => {
                let (client, conn) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(err)?;
                tokio::spawn(drive(conn, self.store.clone()));
                client
            }
        };
        tracing::debug!(store = %self.store, "connected to the result store");
        Ok(client)
    }

    /// A failed operation as a store error; a broken connection is dropped, to be replaced.
    fn failed(&mut self, source: tokio_postgres::Error) -> StoreError {
        if source.is_closed() || self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        StoreError::Postgres {
            store: self.store.clone(),
            source,
        }
    }

    /// Run `op`, again on a new connection when the connection broke under it.
    async fn attempt<T, F>(&mut self, op: &F) -> Result<T, StoreError>
    where
        F: for<'c> Fn(&'c mut Client) -> PgFuture<'c, T>,
    {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF).await;
            }
            let client = match self.client().await {
                Ok(c) => c,
                // The server refused us (authentication, no such database): final.
                Err(e @ StoreError::Postgres { .. }) if refused(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "cannot connect to the result store");
                    last = Some(e);
                    continue;
                }
            };
            match tokio::time::timeout(STATEMENT_TIMEOUT, op(client)).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => {
                    let broken =
                        e.is_closed() || self.client.as_ref().is_some_and(Client::is_closed);
                    let e = self.failed(e);
                    if !broken {
                        // The server answered with an error: repeating it would not help.
                        return Err(e);
                    }
                    tracing::warn!(error = %e, attempt, "result store connection lost");
                    last = Some(e);
                }
                Err(_) => {
                    // The statement may still be running on a dead link: start afresh.
                    self.client = None;
                    last = Some(StoreError::Unavailable {
                        store: self.store.clone(),
                        reason: format!(
                            "no answer to a statement within {} s",
                            STATEMENT_TIMEOUT.as_secs()
                        ),
                    });
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }
}

/// An error the server itself sent: trying again would get the same answer.
fn refused(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres { source, .. } if source.as_db_error().is_some())
}

/// Drive a connection until it closes; its errors are logged (the next operation reconnects).
async fn drive<S, T>(conn: tokio_postgres::Connection<S, T>, store: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = conn.await {
        tracing::warn!(error = %e, %store, "result store connection closed");
    }
}
