//! The fixes `doctor` names for what the runbook has no finding code for (DNS records, EHLO
//! capabilities, IMAP folders...), kept in one place. Items that match a runbook finding
//! (`tls_error`, `imap_auth_failed`, `next_hop_*`) take the runbook's words instead (`judge`).

/// A doctor-specific fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    MxMismatch,
    MxMissingFallback,
    NoMailHost,
    NxDomain,
    DnsQueryFailed,
    NoAddress,
    Unreachable,
    BannerRefused,
    NoStarttls,
    NoAuth,
    CertExpiring,
    CertExpired,
    CertWrongName,
    NoIdle,
    NoUidplus,
    FolderMissing,
    ImapSession,
    RelayNoEvidence,
    LogsUnreadable,
    SendGridNoMailSend,
    SendGridKeyUnjudged,
}

impl Hint {
    pub fn text(self) -> &'static str {
        match self {
            Hint::MxMismatch => "Point the domain's MX records at the expected mail exchanger (the EC2 MX gateway) at the DNS provider, then wait for the old TTL to pass; check with dig MX <domain>.",
            Hint::MxMissingFallback => "Add the domain's MX record (e.g. `<domain>. MX 10 <mx host>.`) at the DNS provider: without one, senders fall back to the domain's own A/AAAA address (RFC 5321 5.1), which is not the mail gateway.",
            Hint::NoMailHost => "The domain has neither MX nor A/AAAA records: nobody can deliver mail to it. Add its MX record at the DNS provider.",
            Hint::NxDomain => "The name does not exist in DNS (NXDOMAIN): check the spelling in the scenario, the domain's registration and its delegation (dig NS <domain>).",
            Hint::DnsQueryFailed => "The DNS query got no answer: check the nameserver ([doctor] nameserver, or /etc/resolv.conf) is reachable and serves the zone, then re-run doctor.",
            Hint::NoAddress => "The host has no A/AAAA record: add it in DNS (or fix the host name in the scenario).",
            Hint::Unreachable => "Nothing answers on that port: check the service is running and listening there (ss -ltn on the host), and that firewalls / security groups let this machine in.",
            Hint::BannerRefused => "The server greets with a refusal: read its text; check postscreen / client restrictions and that this machine's address is allowed (smtpd_client_restrictions, mynetworks).",
            Hint::NoStarttls => "The server does not offer STARTTLS: set smtpd_tls_security_level = may (with smtpd_tls_cert_file / smtpd_tls_key_file) on it and postfix reload.",
            Hint::NoAuth => "The server offers no AUTH after TLS: enable SASL on the submission service (smtpd_sasl_auth_enable = yes on port 587) and postfix reload.",
            Hint::CertExpiring => "The certificate expires soon: renew it (certbot renew, or the CA's process), install it, and reload the service that serves it (postfix reload / doveadm reload).",
            Hint::CertExpired => "The certificate has expired: renew it, install the new one (smtpd_tls_cert_file for Postfix, ssl_cert for Dovecot) and reload the service; clients refuse it until then.",
            Hint::CertWrongName => "The certificate is not valid for this host name: install a certificate whose subjectAltName lists the name clients use (or fix the host name in the scenario), then reload the service.",
            Hint::NoIdle => "The IMAP server does not offer IDLE: flowtest falls back to polling (slower detection). Re-enable IDLE (Dovecot: remove the imap_capability override).",
            Hint::NoUidplus => "The IMAP server does not offer UIDPLUS: flowtest cannot expunge only its own probes by UID. Re-enable UIDPLUS (Dovecot: remove the imap_capability override).",
            Hint::FolderMissing => "A watched folder does not exist: create it (doveadm mailbox create -u <user> <folder>) or fix `folders` in the scenario.",
            Hint::ImapSession => "The IMAP session failed before login could be judged: check the receiver's host and port reach Dovecot's IMAP listener and read Dovecot's log.",
            Hint::RelayNoEvidence => "No mail for this path passed the sending host in the log window and none is waiting: run a probe (flowtest run <scenario>) and run doctor again, or widen [doctor] log_window.",
            Hint::LogsUnreadable => "The sending host's log could not be read: fix the [[log_source]] for that role (path, command, permissions) so doctor can judge the hop behind it.",
            Hint::SendGridNoMailSend => "The API key is valid but lacks the mail.send scope: in SendGrid's Settings > API Keys give the key Mail Send access (Restricted Access > Mail Send: Full Access) or create one that has it, and store it where the scenario's api_key_env / api_key_file points.",
            Hint::SendGridKeyUnjudged => "SendGrid's answer did not say whether the key is good: check https://status.sendgrid.com and the scenario's base_url, then run doctor again.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hint_says_what_to_do() {
        for h in [
            Hint::MxMismatch,
            Hint::MxMissingFallback,
            Hint::NoMailHost,
            Hint::NxDomain,
            Hint::DnsQueryFailed,
            Hint::NoAddress,
            Hint::Unreachable,
            Hint::BannerRefused,
            Hint::NoStarttls,
            Hint::NoAuth,
            Hint::CertExpiring,
            Hint::CertExpired,
            Hint::CertWrongName,
            Hint::NoIdle,
            Hint::NoUidplus,
            Hint::FolderMissing,
            Hint::ImapSession,
            Hint::RelayNoEvidence,
            Hint::LogsUnreadable,
            Hint::SendGridNoMailSend,
            Hint::SendGridKeyUnjudged,
        ] {
            assert!(h.text().len() > 40 && h.text().ends_with('.'), "{h:?}");
        }
    }
}
