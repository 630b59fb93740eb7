//! DNS for `doctor`: MX and A/AAAA lookups through hickory-resolver, asking the configured
//! nameserver (the lab's) or the system's. Answers are handed back as facts
//! ([`Answer`]) for `core::doctor::judge`; a missing record is an answer, not a failure.
//! Not here: what an answer means.
use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use crate::core::doctor::judge::{Answer, Mx};

/// A resolver that asks `nameserver` (UDP, then TCP) or, without one, the system's
/// (`/etc/resolv.conf`); never the hosts file. One attempt per query, bounded by `timeout`; no caching across runs.
pub fn resolver(
    nameserver: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match nameserver {
        Some(addr) => {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = addr.port();
                    c
                })
                .collect();
            let ns = NameServerConfig::new(addr.ip(), true, connections);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                provider,
            )
        }
        None => TokioResolver::builder(provider)
            .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?,
    };
    let opts = builder.options_mut();
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    // What DNS says, not /etc/hosts: the records others resolve are what is being checked.
    opts.use_hosts_file = ResolveHosts::Never;
    builder
        .build()
        .map_err(|e| format!("cannot set up the DNS resolver: {e}"))
}

/// A fully qualified query name (no search-list expansion of a bare domain).
fn fqdn(name: &str) -> String {
    let n = name.trim();
    if n.ends_with('.') {
        n.to_owned()
    } else {
        format!("{n}.")
    }
}

fn failed<T>(e: &NetError) -> Answer<T> {
    if e.is_nx_domain() {
        Answer::NxDomain
    } else if e.is_no_records_found() {
        Answer::NoRecords
    } else {
        Answer::Failed(crate::core::text::escape_control(&e.to_string()).into_owned())
    }
}

/// The MX records of `domain`.
pub async fn mx(r: &TokioResolver, domain: &str) -> Answer<Mx> {
    match r.lookup(fqdn(domain), RecordType::MX).await {
        Ok(l) => {
            let mx: Vec<Mx> = l
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::MX(m) => Some(Mx {
                        preference: m.preference,
                        exchange: m.exchange.to_ascii(),
                    }),
                    _ => None,
                })
                .collect();
            if mx.is_empty() {
                Answer::NoRecords
            } else {
                Answer::Records(mx)
            }
        }
        Err(e) => failed(&e),
    }
}

/// The A and AAAA addresses of `host`, as text. A name with only one family answers that one.
pub async fn addresses(r: &TokioResolver, host: &str) -> Answer<String> {
    let name = fqdn(host);
    let (a, aaaa) = tokio::join!(
        r.lookup(name.as_str(), RecordType::A),
        r.lookup(name.as_str(), RecordType::AAAA)
    );
    let mut out = Vec::new();
    for l in [&a, &aaaa].into_iter().flatten() {
        for rec in l.answers() {
            match &rec.data {
                RData::A(ip) => out.push(ip.0.to_string()),
                RData::AAAA(ip) => out.push(ip.0.to_string()),
                _ => {}
            }
        }
    }
    if !out.is_empty() {
        return Answer::Records(out);
    }
    // Neither family answered: the A query's error says why (NXDOMAIN, no records, timeout).
    match (&a, &aaaa) {
        (Err(e), _) if !e.is_no_records_found() => failed(e),
        (_, Err(e)) if !e.is_no_records_found() => failed(e),
        (Err(e), _) => failed(e),
        _ => Answer::NoRecords,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_are_absolute() {
        assert_eq!(fqdn("corp.test"), "corp.test.");
        assert_eq!(fqdn(" corp.test. "), "corp.test.");
    }
}
