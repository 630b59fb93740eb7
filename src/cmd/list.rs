//! `flowtest list`: the configured scenarios, one line each (or JSON).
use std::path::PathBuf;

use flowtest::cli::{ListArgs, TraceFormat};
use flowtest::config::{Sender, TlsMode};
use flowtest::exit::Exit;

use super::load_config;

/// The sender as `list` shows it: JSON, and the words of the human line (`smtp host:port (tls)`).
fn sender_view(sender: &Sender) -> (serde_json::Value, String) {
    match sender {
        Sender::Smtp(smtp) => (
            serde_json::json!({"kind": "smtp", "host": smtp.host, "port": smtp.port, "tls": tls_word(smtp.tls)}),
            format!("smtp {}:{} ({})", smtp.host, smtp.port, tls_word(smtp.tls)),
        ),
        Sender::SendGrid(sg) => (
            serde_json::json!({"kind": "sendgrid", "base_url": sg.base_url}),
            format!("sendgrid {}", sg.base_url),
        ),
    }
}

fn tls_word(t: TlsMode) -> &'static str {
    match t {
        TlsMode::Starttls => "starttls",
        TlsMode::Tls => "tls",
        TlsMode::None => "plaintext",
    }
}

pub fn run(config: &Option<PathBuf>, args: ListArgs) -> Exit {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(e) => return e,
    };
    match args.format {
        TraceFormat::Json => {
            let v: Vec<serde_json::Value> = config
                .scenarios
                .iter()
                .map(|s| {
                    let (sender, _) = sender_view(&s.sender);
                    serde_json::json!({
                        "name": s.name,
                        "description": s.description,
                        "file": s.file,
                        "sender": sender,
                        "receiver": {"host": s.receiver.host, "port": s.receiver.port, "user": s.receiver.username, "folders": s.receiver.folders},
                        "timeout_ms": s.timeout.as_millis() as u64,
                        "stages": s.path.iter().map(|m| m.stage.clone()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "scenarios": v }))
                    .unwrap_or_default()
            );
        }
        TraceFormat::Human => {
            if config.scenarios.is_empty() {
                println!("no scenarios in {}", config.scenarios_dir.display());
            }
            for s in &config.scenarios {
                let (_, sender) = sender_view(&s.sender);
                println!("{:<24} {}", s.name, s.description);
                println!(
                    "{:<24} {} -> imap {}:{} as {} [{}]",
                    "",
                    sender,
                    s.receiver.host,
                    s.receiver.port,
                    s.receiver.username,
                    s.receiver.folders.join(", ")
                );
            }
        }
    }
    Exit::Ok
}
