//! `flowtest canary`: glue for the scheduled canary. Loads the configuration, opens the store,
//! binds the HTTP listener, maps SIGHUP to a reload and SIGTERM/SIGINT to a graceful stop, and
//! runs the daemon until it stops. The scheduling itself is in `canary::daemon`.
use std::future::IntoFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use super::{load_config, runtime, unusable};
use flowtest::canary::alerts::{Alerts, RetryPolicy};
use flowtest::canary::daemon::{self, Control, Shared};
use flowtest::canary::http;
use flowtest::canary::metrics::Metrics;
use flowtest::canary::prober::ConfigLoader;
use flowtest::cli::CanaryArgs;
use flowtest::clock;
use flowtest::edge::store::Store;
use flowtest::exit::Exit;

/// How long queued alerts may still be delivered after the daemon stopped.
const ALERT_FLUSH: Duration = Duration::from_secs(10);

pub fn run(config_path: &Option<PathBuf>, args: CanaryArgs) -> Exit {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let store = match Store::from_config(&config) {
        Ok(s) => Arc::new(s),
        Err(e) => return unusable(e),
    };
    let listen = args.listen.unwrap_or(config.canary.listen);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return e,
    };
    let loader = Arc::new(ConfigLoader {
        path: config.path.clone(),
        store,
    });
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => return unusable(format!("cannot listen on {listen}: {e}")),
        };
        let controls = match signals() {
            Ok(rx) => rx,
            Err(e) => return unusable(format!("cannot handle signals: {e}")),
        };
        let metrics = Arc::new(Metrics::new(&config.canary.location));
        let (alerts, alert_task) = Alerts::start(Arc::clone(&metrics), RetryPolicy::default());
        let shared = Arc::new(Shared::new(
            metrics,
            alerts,
            clock::system(),
            config.canary.location.clone(),
            config.state_dir.clone(),
        ));
        tracing::info!(
            listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            location = %config.canary.location,
            "canary listening"
        );
        let (stop_http, http_stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, http::router(Arc::clone(&shared)))
                .with_graceful_shutdown(async {
                    let _ = http_stopped.await;
                })
                .into_future(),
        );
        let outcome = daemon::run(Arc::clone(&shared), loader, controls).await;
        let _ = stop_http.send(());
        if tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .is_err()
        {
            tracing::warn!("HTTP server did not stop in time");
        }
        // The delivery task ends once the last handle (inside `shared`) is gone.
        drop(shared);
        if tokio::time::timeout(ALERT_FLUSH, alert_task).await.is_err() {
            tracing::warn!("alerts still queued at exit were not delivered");
        }
        match outcome {
            Ok(()) => Exit::Ok,
            Err(e) => unusable(e),
        }
    })
}

/// SIGHUP -> reload, SIGTERM/SIGINT -> shutdown, as daemon controls.
fn signals() -> std::io::Result<mpsc::Receiver<Control>> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let c = tokio::select! {
                _ = hup.recv() => Control::Reload,
                _ = term.recv() => Control::Shutdown,
                _ = int.recv() => Control::Shutdown,
            };
            tracing::info!(signal = ?c, "signal received");
            if tx.send(c).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
