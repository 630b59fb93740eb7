//! A Dovecot process's failed connect to one of Dovecot's own sockets (lower-cased line
//! texts): `imap-login: Error: connect(ssl-params) failed: Permission denied`, 2.4's `auth:
//! Error: net_connect_unix(anvil-auth-penalty) failed: Connection refused`. The service behind
//! the socket, or the socket's mode, is at fault, not the mail store: a chown of mail changes
//! nothing. The auth sockets are told apart elsewhere (`super::auth`).

/// What a failed connect to a Dovecot socket means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SocketFailure {
    /// A service another needs is down, or its socket's mode shuts the process out.
    Service,
    /// The stats socket: a process run as the mail user (dovecot-lda from Postfix's local(8))
    /// may not write to it, and logs so on every delivery; the delivery goes on without stats.
    Stats,
}

/// The failed connect's meaning, if the text tells of one to a Dovecot socket other than
/// auth's: a bare socket name (`connect(ssl-params)`, `net_connect_unix(anvil-auth-penalty)`)
/// or a path in Dovecot's run directory (`/run/dovecot/stats-writer`).
pub(super) fn dovecot_socket_failure(t: &str) -> Option<SocketFailure> {
    let socket = failed_connect_target(t)?;
    let name = socket.rsplit('/').next().unwrap_or(socket);
    let ours = !socket.contains('/') || socket.contains("/dovecot/");
    // The auth sockets (`login/auth`, `auth-userdb`, `auth-master`, `auth-client`) have their
    // own findings; anvil's auth penalty socket is anvil's.
    let auth = name.starts_with("auth") || name == "login";
    if !ours || auth || name.is_empty() {
        return None;
    }
    Some(if name.starts_with("stats") {
        SocketFailure::Stats
    } else {
        SocketFailure::Service
    })
}

/// The text without its first failed connect and the error it names (`net_connect_unix(X)
/// failed: permission denied`), so that what else it says can be read on its own.
pub(super) fn without_failed_connect(t: &str) -> String {
    let Some((at, close)) = failed_connect(t) else {
        return t.to_owned();
    };
    let after = &t[close + ") failed".len()..];
    let after = after.strip_prefix(": ").unwrap_or(after);
    let error = [
        "permission denied",
        "connection refused",
        "no such file or directory",
    ]
    .iter()
    .find(|e| after.starts_with(*e))
    .map_or(0, |e| e.len());
    format!("{}{}", &t[..at], &after[error..])
}

/// The target of the first `connect(X) failed` or `net_connect_unix(X) failed` in the text.
fn failed_connect_target(t: &str) -> Option<&str> {
    let (at, close) = failed_connect(t)?;
    let open = at + t[at..].find('(')? + 1;
    Some(&t[open..close])
}

/// Where the first `connect(`/`net_connect_unix(` call starts and where its `)` is, when a
/// ` failed` follows it.
fn failed_connect(t: &str) -> Option<(usize, usize)> {
    // The earlier of both calls (`net_connect_unix(` holds no `connect(`), from its word's start.
    let call = [t.find("connect("), t.find("connect_unix(")]
        .into_iter()
        .flatten()
        .min()?;
    let at = t[..call]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let open = at + t[at..].find('(')? + 1;
    let close = open + t[open..].find(')')?;
    t[close..].starts_with(") failed").then_some((at, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_sockets_are_told_from_auth_and_from_others() {
        use SocketFailure::*;
        for (text, want) in [
            ("connect(ssl-params) failed: permission denied", Some(Service)),
            ("net_connect_unix(anvil-auth-penalty) failed: connection refused", Some(Service)),
            ("net_connect_unix(/run/dovecot/stats-writer) failed: permission denied", Some(Stats)),
            ("lda(bob): error: net_connect_unix(/var/run/dovecot/anvil) failed: no such file or directory", Some(Service)),
            // Auth's sockets are auth's; another program's are not Dovecot's.
            ("auth: connect(login) failed: connection refused", None),
            ("net_connect_unix(/run/dovecot/login/auth) failed: no such file or directory", None),
            ("userdb lookup: connect(/var/run/dovecot/auth-userdb) failed: permission denied", None),
            ("connect(/var/run/mysqld/mysqld.sock) failed: permission denied", None),
            // Not a failed connect.
            ("connect(ssl-params) succeeded", None),
            ("mkdir(/var/mail/bob) failed: permission denied", None),
            ("connect(", None),
        ] {
            assert_eq!(dovecot_socket_failure(text), want, "{text}");
        }
    }

    #[test]
    fn the_failed_connect_is_cut_with_its_error() {
        for (text, want) in [
            ("output: lda(b): error: net_connect_unix(/run/dovecot/stats-writer) failed: permission denied ", "output: lda(b): error:  "),
            ("x connect(ssl-params) failed: connection refused; quota exceeded", "x ; quota exceeded"),
            ("connect(y) failed", ""),
            ("no connect here: permission denied", "no connect here: permission denied"),
        ] {
            assert_eq!(without_failed_connect(text), want, "{text}");
        }
    }
}
