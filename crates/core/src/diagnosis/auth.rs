//! Dovecot's authentication out of a process's reach: a socket or file it may not open, an
//! auth service it cannot use (lower-cased line texts).

use super::has;
use crate::logs::Severity;

/// A permission Dovecot's authentication lacks (lower-cased text): its users file
/// (`passwd-file: open(/etc/dovecot/users) failed: Permission denied`) or an auth socket
/// (`connect(/var/run/dovecot/auth-userdb) failed: Permission denied`). Not the mail store's:
/// the fix is the file's mode or the socket listener's user and mode, not a chown of mail.
pub(super) fn auth_permission_denied(t: &str) -> bool {
    t.contains("permission denied")
        && has(
            t,
            &[
                "passwd-file",
                "auth-userdb",
                "auth-master",
                "auth-client",
                // A login process's connection to its auth socket (`auth: connect(login)`).
                "auth: connect(",
                "/etc/dovecot/",
            ],
        )
}

/// An auth backend that can judge no password of the users it holds: its users file is not
/// there (`passwd-file: open(/etc/dovecot/userdb) failed: No such file or directory`,
/// `passwd-file(info,192.0.2.7): stat(/etc/exim4/domains//passwd) failed: ...`), or a stored
/// password is in no scheme it reads (`Invalid password in passdb: Not a valid MD5-CRYPT or
/// PLAIN-MD5 password`, 2.3's `Password data is not valid for scheme SHA512-CRYPT: ...`,
/// `Unknown scheme SHA256-CRYPT`): the file's path, or `default_pass_scheme` and the stored
/// `{SCHEME}` prefixes, are to fix; the user's password is not at fault.
pub(super) fn auth_backend_unreadable(t: &str) -> bool {
    (t.contains("passwd-file") && t.contains(") failed: "))
        || has(
            t,
            &[
                "invalid password in passdb",
                "password data is not valid for scheme",
                "): unknown scheme ",
                // A userdb lookup (LDA's, LMTP's) with only `userdb prefetch` configured.
                "userdb lookup not possible with only userdb prefetch",
            ],
        )
}

/// Whether a Dovecot line (lower-cased) tells of a process that cannot use the auth service:
/// an error in [`AUTH_SERVICE_UNUSABLE`]'s words, lib-auth's failed connect to the auth socket
/// (2.3 prefixes it `auth-client: conn unix:login`; a user lookup's, as LMTP's, `auth-master:
/// userdb lookup(a@corp.test): connect(/var/run/dovecot//auth-userdb) failed: No such file or
/// directory`), or a login process whose client waited 10 s for the greeting because auth did
/// not answer (`Auth process not responding, delayed sending initial response (greeting)`), a
/// warning no restart explains. A socket it may not open is told apart before.
pub(super) fn auth_service_unusable(severity: Severity, t: &str) -> bool {
    let error = severity != Severity::Warning;
    // `net_connect_unix(/run/dovecot/login/auth) failed`, with or without 2.3's `auth-client:`.
    let lib_auth_connect = has(t, &["auth-client", "auth-master", "/auth"])
        && has(t, &["connect(", "connect_unix("])
        && t.contains(") failed");
    (error && (has(t, AUTH_SERVICE_UNUSABLE) || lib_auth_connect))
        || t.contains("auth process not responding")
        // A login process's disconnect for want of it (`logs::dovecot::login_auth_broken`).
        || t.contains("auth process broken (disconnected before auth was ready")
}

/// A Dovecot process that cannot use the auth service, in lib-auth's words and the auth
/// server's: the service is stuck, or its binary is of another version than the process's
/// (a package upgrade without a restart: `Authentication server not compatible with this
/// client (mixed old and new binaries?)`, Dovecot 2.2's `Authentication server didn't send
/// valid SPID as expected`, the auth server's `BUG: Authentication client sent unknown
/// handshake command`). Every login and user lookup fails until Dovecot is restarted. Errors
/// only: what a process logs as a warning about the auth service (`Auth connection closed
/// with 1 pending requests`, `auth client 123 disconnected with 1 pending requests`) comes
/// with any restart of it.
const AUTH_SERVICE_UNUSABLE: &[&str] = &[
    "authentication server not compatible with this client",
    "authentication server didn't send valid spid",
    "timeout waiting for handshake from auth server",
    "disconnected from auth server, aborting",
    "bug: authentication client sent unknown handshake",
    "bug: authentication server sent",
    // A login process that cannot reach the auth socket at all (`auth: connect(login) failed:
    // Connection refused`); one it may not open is told apart above.
    "auth: connect(",
];

/// The auth service's own word on a request its passdb or userdb did not answer in time
/// (`Request 25947.1 timed out after 60 secs, state=2`: an SQL backend that hangs). Dovecot logs
/// it as an error only while the lookup is pending; a client that stopped answering mid-
/// mechanism is an info line of other words.
pub(super) fn auth_request_timed_out(t: &str) -> bool {
    t.starts_with("request ") && t.contains(" timed out after ") && t.contains(", state=")
}
