//! The canary's HTTP endpoints: `/metrics` (OpenMetrics text), `/healthz` (200 when the
//! scheduler is alive and the store writable, else 503 with the reasons) and `/` (the status
//! page). Not here: what the metrics or the page contain.
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use super::daemon::Shared;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .with_state(shared)
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn healthz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let problems = s.health_problems();
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", problems.join("\n")),
        )
    }
}

async fn index(State(s): State<Arc<Shared>>) -> Html<String> {
    let at = s.clock.now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    Html(s.board.page(&s.location, &at))
}
