//! The runbook as data: each finding's fix (hint) and the texts of its draft incident record
//! (component, issue type, impact, severity, symptoms, root cause, prevention, related
//! documents), parsed from TOML and rendered with placeholders filled from the finding and the
//! configuration. The default is `runbook/default.toml` at the repository root, compiled in; an
//! operator's file replaces it. Owns the format, its validation and the rendering. Does not
//! read files (the config layer does, with a size cap) and does not classify findings
//! (`core::diagnosis`).
//!
//! Placeholders, written `{name}` in any text (`{{` and `}}` are literal braces):
//! - `{role}`: the host role where the finding was seen (a `[[log_source]]` role such as
//!   `mx`), by the `name` its `[roles.<role>]` table gives it, else the role itself;
//! - `{stage}`: the stage where the message stopped (a scenario path stage, else the role);
//! - `{next_hop}`: what that role hands mail to, from `[roles.<role>] next_hop` (a role, shown
//!   by its name when the runbook names it);
//! - `{relay}`: the outbound relay of that role, from `[roles.<role>] relay`;
//! - `{recipient}`: the probe's recipient, from the configuration (the scenario's `rcpt_to`,
//!   `diagnose --rcpt`);
//! - `{domain}`: the domain of `{recipient}`.
//!
//! A finding on a host role the runbook's `[roles]` do not describe (a log given under another
//! name, a bare log's own host names) takes `[finding.<code>.other_roles]` before the code's
//! own texts: a runbook written for one system keeps its deployment's words (its VPN, its
//! hosts) for that system's roles and gives generic advice for anyone else's log.
//!
//! A role's `next_hop_addresses` (networks, addresses, host names: `next_hop`) tell its next hop
//! from other servers: a finding on that role whose `peer` (the server it talked to) is none
//! of them is about another server (an Internet MX a bounce goes to) and takes the other roles'
//! texts too, then the code's.
//!
//! A placeholder without a value renders as a neutral phrase ("the host", "the stage", "the
//! next hop", "the relay", "the recipient", "the domain"). An unknown name is an error when the
//! runbook is parsed; text that reaches the renderer anyway keeps it verbatim.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnosis::{Finding, FindingCode};

mod next_hop;

pub use next_hop::HopAddress;

/// The compiled-in runbook: the operator's system as the troubleshooting guide describes it.
pub const DEFAULT_RUNBOOK: &str = include_str!("../../../runbook/default.toml");

/// A runbook that does not parse or validate: the line (when known), the key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookError {
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for RunbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RunbookError {}

/// The operator's severity scale for incident records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentSeverity {
    Critical,
    High,
    Medium,
    Low,
}

impl IncidentSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentSeverity::Critical => "Critical",
            IncidentSeverity::High => "High",
            IncidentSeverity::Medium => "Medium",
            IncidentSeverity::Low => "Low",
        }
    }
}

/// A value a runbook text can name in braces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Role,
    Stage,
    NextHop,
    Relay,
    Recipient,
    Domain,
}

impl Placeholder {
    pub const ALL: [Placeholder; 6] = [
        Placeholder::Role,
        Placeholder::Stage,
        Placeholder::NextHop,
        Placeholder::Relay,
        Placeholder::Recipient,
        Placeholder::Domain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Role => "role",
            Placeholder::Stage => "stage",
            Placeholder::NextHop => "next_hop",
            Placeholder::Relay => "relay",
            Placeholder::Recipient => "recipient",
            Placeholder::Domain => "domain",
        }
    }

    /// What the placeholder renders as when nothing fills it.
    pub fn neutral(self) -> &'static str {
        match self {
            Placeholder::Role => "the host",
            Placeholder::Stage => "the stage",
            Placeholder::NextHop => "the next hop",
            Placeholder::Relay => "the relay",
            Placeholder::Recipient => "the recipient",
            Placeholder::Domain => "the domain",
        }
    }

    fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What the configuration knows about the probe, for placeholders a finding cannot fill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The probe's recipient address (`{recipient}`, `{domain}`).
    pub recipient: Option<String>,
}

/// A host role as the runbook describes it (`[roles.<role>]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    /// How texts name the role (`{role}`, `{next_hop}`).
    pub name: Option<String>,
    /// The role this one hands mail to (`{next_hop}`).
    pub next_hop: Option<String>,
    /// The relay this role sends outbound mail through (`{relay}`).
    pub relay: Option<String>,
    /// Where the next hop is reached (`next_hop_addresses`): a finding's peer that is none of
    /// these is another server. Empty: every peer is taken for the next hop.
    pub next_hop_addresses: Vec<HopAddress>,
}

/// What a runbook says about one finding code, or about one code on one role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Texts {
    hint: Option<String>,
    component: Option<String>,
    issue_type: Option<String>,
    impact: Option<String>,
    severity: Option<IncidentSeverity>,
    symptoms: Option<String>,
    root_cause: Option<String>,
    prevention: Option<String>,
    related: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    texts: Texts,
    /// `[finding.<code>.role.<role>]`: what differs when the finding is on that role.
    by_role: BTreeMap<String, Texts>,
    /// `[finding.<code>.other_roles]`: what differs on a role `[roles]` does not describe.
    other_roles: Option<Texts>,
}

/// A parsed, validated runbook. Read-only; every lookup falls back to neutral words for what
/// the runbook does not describe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runbook {
    roles: BTreeMap<String, Role>,
    /// Component id (file-name form, `SMARTHOST`) -> title (`Smarthost`).
    components: BTreeMap<String, String>,
    findings: BTreeMap<FindingCode, Entry>,
}

/// Everything an incident draft needs for one finding, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentTexts {
    /// File-name form: upper case, digits, `_` and `-` only.
    pub component: String,
    pub component_title: String,
    /// File-name form, like `component`.
    pub issue_type: String,
    pub impact: String,
    pub severity: IncidentSeverity,
    pub symptoms: String,
    pub root_cause: String,
    pub hint: String,
    pub prevention: String,
    pub related: String,
}

/// Which finding a text is rendered for.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub code: FindingCode,
    /// The host role where it was seen.
    pub role: Option<&'a str>,
    pub stage: Option<&'a str>,
    /// The server the finding's host talked to (`HOST[IP]`, as the log gives it).
    pub peer: Option<&'a str>,
}

impl<'a> Subject<'a> {
    pub fn of(f: &'a Finding) -> Self {
        Subject {
            code: f.code,
            role: f.host.as_deref(),
            stage: f.stage.as_deref(),
            peer: f.peer.as_deref(),
        }
    }
}

impl Runbook {
    /// The compiled-in default. It is checked by a test; should it ever fail to parse, every
    /// text falls back to neutral words rather than panicking.
    pub fn builtin() -> &'static Runbook {
        static BUILTIN: OnceLock<Runbook> = OnceLock::new();
        BUILTIN.get_or_init(|| Runbook::parse(DEFAULT_RUNBOOK).unwrap_or_default())
    }

    /// Parse and validate a runbook. Unknown keys, unknown finding codes, unknown placeholders
    /// and component / issue-type names unfit for a file name are errors.
    pub fn parse(src: &str) -> Result<Runbook, RunbookError> {
        let raw: RawRunbook = toml::from_str(src).map_err(|e| RunbookError {
            line: e.span().map(|s| line_of(src, s.start)),
            key: None,
            message: e.message().trim().to_owned(),
        })?;
        let v = Validator { src };
        let mut roles = BTreeMap::new();
        for (id, r) in raw.roles {
            let key = format!("roles.{id}");
            roles.insert(
                id,
                Role {
                    name: v.plain(r.name, &key, "name")?,
                    next_hop: v.plain(r.next_hop, &key, "next_hop")?,
                    relay: v.plain(r.relay, &key, "relay")?,
                    next_hop_addresses: v.addresses(r.next_hop_addresses, &key)?,
                },
            );
        }
        let mut components = BTreeMap::new();
        for (id, title) in raw.components {
            v.file_name_part(&id, title.span().start, &format!("components.{id}"))?;
            components.insert(id, title.into_inner());
        }
        let mut findings = BTreeMap::new();
        for (code, mut e) in raw.finding {
            let key = format!("finding.{code}");
            let mut by_role = BTreeMap::new();
            for (role, r) in std::mem::take(&mut e.role) {
                let rkey = format!("{key}.role.{role}");
                by_role.insert(role, v.leaf_texts(r, &rkey)?);
            }
            let other_roles = match e.other_roles.take() {
                Some(r) => Some(v.leaf_texts(*r, &format!("{key}.other_roles"))?),
                None => None,
            };
            let texts = v.texts(e, &key)?;
            findings.insert(
                code,
                Entry {
                    texts,
                    by_role,
                    other_roles,
                },
            );
        }
        Ok(Runbook {
            roles,
            components,
            findings,
        })
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.get(id)
    }

    /// Whether the runbook has its own entry for `code` (else neutral words stand in).
    pub fn describes(&self, code: FindingCode) -> bool {
        self.findings.contains_key(&code)
    }

    /// The fix for a finding, placeholders filled.
    pub fn hint(&self, s: Subject<'_>, facts: &Facts) -> String {
        let t = self
            .text(s, |t| t.hint.as_deref())
            .unwrap_or("Read the evidence, fix the cause it names, then re-run the probe.");
        self.render(t, s, facts)
    }

    /// Re-render every finding's hint with this runbook.
    pub fn apply(&self, findings: &mut [Finding], facts: &Facts) {
        for f in findings {
            f.hint = self.hint(Subject::of(f), facts);
        }
    }

    /// [`Runbook::apply`] through `cache`, which must only ever be used with this runbook and
    /// these facts.
    pub fn apply_cached(&self, findings: &mut [Finding], facts: &Facts, cache: &mut HintCache) {
        for f in findings {
            cache.set_hint(self, facts, f);
        }
    }

    /// The incident record's texts for a finding.
    pub fn incident(&self, s: Subject<'_>, facts: &Facts) -> IncidentTexts {
        let render = |pick: fn(&Texts) -> Option<&str>, neutral: &str| {
            self.render(self.text(s, pick).unwrap_or(neutral), s, facts)
        };
        let component = self
            .text(s, |t| t.component.as_deref())
            .unwrap_or("MAIL")
            .to_owned();
        let component_title = self
            .components
            .get(&component)
            .cloned()
            .unwrap_or_else(|| title_case(&component));
        let issue_type = self
            .text(s, |t| t.issue_type.as_deref())
            .map_or_else(|| s.code.as_str().to_ascii_uppercase(), str::to_owned);
        let severity = self
            .entry_texts(s)
            .find_map(|t| t.severity)
            .unwrap_or(IncidentSeverity::Medium);
        IncidentTexts {
            component,
            component_title,
            issue_type,
            impact: render(|t| t.impact.as_deref(), "Mail flow"),
            severity,
            symptoms: render(|t| t.symptoms.as_deref(), s.code.title()),
            root_cause: render(
                |t| t.root_cause.as_deref(),
                "Not described by the runbook: see the evidence.",
            ),
            hint: self.hint(s, facts),
            prevention: render(
                |t| t.prevention.as_deref(),
                "Run flowtest probes after configuration changes and alert on their findings.",
            ),
            related: render(|t| t.related.as_deref(), "None recorded in the runbook."),
        }
    }

    /// The role's own texts first (or, on a role `[roles]` does not describe or about a peer
    /// that is not the role's next hop, the texts for other roles), then the code's.
    fn entry_texts(&self, s: Subject<'_>) -> impl Iterator<Item = &Texts> {
        let entry = self.findings.get(&s.code);
        let other_server = self.peer_off_next_hop(s);
        let first = entry.zip(s.role).and_then(|(e, r)| match e.by_role.get(r) {
            _ if other_server => e.other_roles.as_ref(),
            Some(t) => Some(t),
            None if self.roles.contains_key(r) => None,
            None => e.other_roles.as_ref(),
        });
        first.into_iter().chain(entry.map(|e| &e.texts))
    }

    /// The finding names a peer, and its role lists where its next hop is reached, and the
    /// peer is none of those: the finding is about another server.
    pub fn peer_off_next_hop(&self, s: Subject<'_>) -> bool {
        let addresses = s
            .role
            .and_then(|r| self.roles.get(r))
            .map_or(&[][..], |r| &r.next_hop_addresses[..]);
        match s.peer {
            Some(peer) if !addresses.is_empty() => !next_hop::peer_matches(addresses, peer),
            _ => false,
        }
    }

    fn text(&self, s: Subject<'_>, pick: fn(&Texts) -> Option<&str>) -> Option<&str> {
        self.entry_texts(s).find_map(pick)
    }

    /// The name a text uses for a role: the runbook's `name`, else the role itself.
    fn role_name<'r>(&'r self, id: &'r str) -> &'r str {
        self.roles
            .get(id)
            .and_then(|r| r.name.as_deref())
            .unwrap_or(id)
    }

    fn value<'r>(&'r self, p: Placeholder, s: Subject<'r>, facts: &'r Facts) -> Option<&'r str> {
        let role = || s.role.and_then(|r| self.roles.get(r));
        match p {
            Placeholder::Role => s.role.map(|r| self.role_name(r)),
            Placeholder::Stage => s.stage,
            Placeholder::NextHop => role()
                .and_then(|r| r.next_hop.as_deref())
                .map(|n| self.role_name(n)),
            Placeholder::Relay => role().and_then(|r| r.relay.as_deref()),
            Placeholder::Recipient => facts.recipient.as_deref(),
            Placeholder::Domain => facts
                .recipient
                .as_deref()
                .and_then(|r| r.trim().trim_matches(['<', '>']).rsplit_once('@'))
                .map(|(_, d)| d),
        }
    }

    fn render(&self, text: &str, s: Subject<'_>, facts: &Facts) -> String {
        let mut out = String::with_capacity(text.len() + 32);
        scan(text, |piece| match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Placeholder(p) => {
                let v = self.value(p, s, facts).map(str::trim).unwrap_or("");
                out.push_str(if v.is_empty() { p.neutral() } else { v });
            }
            Piece::Unknown(raw) => out.push_str(raw),
        });
        out
    }
}

/// A [`HintCache`] key: code, role, stage, and whether the peer is off the role's next hop
/// (what else picks the texts; the peer itself fills no placeholder).
type HintKey = (FindingCode, Option<String>, Option<String>, bool);

/// Hints rendered before, by subject (code, role, stage, peer off the next hop), for one
/// runbook and one set of facts: a long report renders the same few hints for thousands of
/// findings. The first `CAP` subjects are kept; others are rendered every time.
#[derive(Debug, Default)]
pub struct HintCache {
    kept: Vec<(HintKey, String)>,
}

impl HintCache {
    const CAP: usize = 64;

    /// Set `f`'s hint as `runbook.hint` with `facts` renders it.
    pub fn set_hint(&mut self, runbook: &Runbook, facts: &Facts, f: &mut Finding) {
        let s = Subject::of(f);
        let other_server = runbook.peer_off_next_hop(s);
        let found = self
            .kept
            .iter()
            .position(|((code, role, stage, other), _)| {
                *code == s.code
                    && role.as_deref() == s.role
                    && stage.as_deref() == s.stage
                    && *other == other_server
            });
        if let Some(i) = found {
            f.hint.clone_from(&self.kept[i].1);
            return;
        }
        let hint = runbook.hint(s, facts);
        if self.kept.len() < Self::CAP {
            let (role, stage) = (s.role.map(str::to_owned), s.stage.map(str::to_owned));
            self.kept
                .push(((s.code, role, stage, other_server), hint.clone()));
        }
        f.hint = hint;
    }
}

/// Title case of an upper-case id: `RELAY_ACCESS_DENIED` -> `Relay Access Denied`.
pub fn title_case(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(c.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

enum Piece<'a> {
    Text(&'a str),
    Placeholder(Placeholder),
    /// `{name}` with a name no placeholder has, as written.
    Unknown(&'a str),
}

/// Split a text into literal runs and `{name}` placeholders (`name`: lower-case letters,
/// digits, `_`). `{{` / `}}` are literal braces; any other brace is literal text.
fn scan<'a>(text: &'a str, mut emit: impl FnMut(Piece<'a>)) {
    let b = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let doubled = matches!(b[i], b'{' | b'}') && b.get(i + 1) == Some(&b[i]);
        if doubled {
            emit(Piece::Text(&text[start..=i]));
            i += 2;
            start = i;
            continue;
        }
        if b[i] == b'{' {
            let name_len = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || **c == b'_')
                .count();
            let close = i + 1 + name_len;
            if name_len > 0 && b.get(close) == Some(&b'}') {
                emit(Piece::Text(&text[start..i]));
                let name = &text[i + 1..close];
                emit(match Placeholder::from_name(name) {
                    Some(p) => Piece::Placeholder(p),
                    None => Piece::Unknown(&text[i..=close]),
                });
                i = close + 1;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    emit(Piece::Text(&text[start..]));
}

/// 1-based line number of a byte offset.
pub fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    components: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    finding: BTreeMap<FindingCode, RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    name: Option<Spanned<String>>,
    next_hop: Option<Spanned<String>>,
    relay: Option<Spanned<String>>,
    next_hop_addresses: Option<Vec<Spanned<String>>>,
}

/// `[finding.<code>]`, and (the same keys but `role` and `other_roles`)
/// `[finding.<code>.role.<role>]` and `[finding.<code>.other_roles]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    hint: Option<Spanned<String>>,
    component: Option<Spanned<String>>,
    issue_type: Option<Spanned<String>>,
    impact: Option<Spanned<String>>,
    severity: Option<IncidentSeverity>,
    symptoms: Option<Spanned<String>>,
    root_cause: Option<Spanned<String>>,
    prevention: Option<Spanned<String>>,
    related: Option<Spanned<String>>,
    #[serde(default)]
    role: BTreeMap<String, RawEntry>,
    other_roles: Option<Box<RawEntry>>,
}

struct Validator<'s> {
    src: &'s str,
}

impl Validator<'_> {
    fn error(&self, offset: Option<usize>, key: &str, message: impl Into<String>) -> RunbookError {
        RunbookError {
            line: offset.map(|o| line_of(self.src, o)),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// A value used as is (no placeholders): role names, next hops, relays.
    fn plain(
        &self,
        v: Option<Spanned<String>>,
        table: &str,
        field: &str,
    ) -> Result<Option<String>, RunbookError> {
        let Some(v) = v else { return Ok(None) };
        if v.get_ref().contains(['{', '}']) {
            return Err(self.error(
                Some(v.span().start),
                &format!("{table}.{field}"),
                "a role's values are used as they are: no braces",
            ));
        }
        Ok(Some(v.into_inner()))
    }

    /// `next_hop_addresses`: each a network, an address or a host name.
    fn addresses(
        &self,
        v: Option<Vec<Spanned<String>>>,
        table: &str,
    ) -> Result<Vec<HopAddress>, RunbookError> {
        let key = format!("{table}.next_hop_addresses");
        let Some(v) = v else { return Ok(Vec::new()) };
        v.into_iter()
            .map(|a| {
                HopAddress::parse(a.get_ref())
                    .map_err(|m| self.error(Some(a.span().start), &key, m))
            })
            .collect()
    }

    /// Component and issue-type names become part of a file name.
    fn file_name_part(&self, s: &str, offset: usize, key: &str) -> Result<(), RunbookError> {
        let ok = s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit())
            && s.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'));
        if ok {
            Ok(())
        } else {
            Err(self.error(
                Some(offset),
                key,
                format!(
                    "{s:?} must be 1 to 64 upper-case letters, digits, '_' or '-' (it names files)"
                ),
            ))
        }
    }

    /// A text that may hold placeholders: every `{name}` must be a known one.
    fn template(
        &self,
        v: Option<Spanned<String>>,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, RunbookError> {
        let Some(v) = v else { return Ok(None) };
        let mut unknown = None;
        scan(v.get_ref(), |p| {
            if let (Piece::Unknown(raw), None) = (p, &unknown) {
                unknown = Some(raw.to_owned());
            }
        });
        if let Some(raw) = unknown {
            let known: Vec<String> = Placeholder::ALL
                .iter()
                .map(|p| format!("{{{}}}", p.name()))
                .collect();
            return Err(self.error(
                Some(v.span().start),
                &format!("{key}.{field}"),
                format!(
                    "unknown placeholder {raw} (known: {}; write {{{{ and }}}} for literal braces)",
                    known.join(", ")
                ),
            ));
        }
        Ok(Some(v.into_inner()))
    }

    fn name_field(
        &self,
        v: Option<Spanned<String>>,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, RunbookError> {
        if let Some(s) = &v {
            self.file_name_part(s.get_ref(), s.span().start, &format!("{key}.{field}"))?;
        }
        Ok(v.map(Spanned::into_inner))
    }

    /// A role's or other roles' table: texts only, no tables of its own.
    fn leaf_texts(&self, e: RawEntry, key: &str) -> Result<Texts, RunbookError> {
        if !e.role.is_empty() || e.other_roles.is_some() {
            return Err(self.error(None, key, "a role table cannot hold role tables"));
        }
        self.texts(e, key)
    }

    fn texts(&self, e: RawEntry, key: &str) -> Result<Texts, RunbookError> {
        Ok(Texts {
            hint: self.template(e.hint, key, "hint")?,
            component: self.name_field(e.component, key, "component")?,
            issue_type: self.name_field(e.issue_type, key, "issue_type")?,
            impact: self.template(e.impact, key, "impact")?,
            severity: e.severity,
            symptoms: self.template(e.symptoms, key, "symptoms")?,
            root_cause: self.template(e.root_cause, key, "root_cause")?,
            prevention: self.template(e.prevention, key, "prevention")?,
            related: self.template(e.related, key, "related")?,
        })
    }
}

#[cfg(test)]
mod tests_next_hop;

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = r#"
[roles.mx]
name = "the gateway"
next_hop = "store"

[roles.store]
name = "the mail store"
relay = "the smarthost"

[components]
MTA = "Mail Transfer Agent"

[finding.next_hop_timeout]
hint = "Check {next_hop}, then flush the queue on {role} ({stage}); mail for {domain} ({recipient}) waits. {{literal}} {x y}"
component = "NET"
severity = "critical"

[finding.auth_failed]
hint = "Check the credentials for {relay}."
component = "MTA"
impact = "Submission"

[finding.auth_failed.role.store]
component = "RELAY"
impact = "Outbound mail through {relay}"

[finding.auth_failed.other_roles]
hint = "Check the client's password on {role}."
"#;

    fn subject(code: FindingCode, role: Option<&'static str>) -> Subject<'static> {
        Subject {
            code,
            role,
            stage: role,
            peer: None,
        }
    }

    #[test]
    fn placeholders_come_from_the_finding_the_roles_and_the_facts() {
        let rb = Runbook::parse(SITE).unwrap();
        let facts = Facts {
            recipient: Some("<bob@example.test>".into()),
        };
        let s = subject(FindingCode::NextHopTimeout, Some("mx"));
        assert_eq!(
            rb.hint(s, &facts),
            "Check the mail store, then flush the queue on the gateway (mx); mail for \
             example.test (<bob@example.test>) waits. {literal} {x y}"
        );
        // Nothing known: neutral words, never a panic, never an empty gap.
        let s = subject(FindingCode::NextHopTimeout, None);
        assert_eq!(
            rb.hint(s, &Facts::default()),
            "Check the next hop, then flush the queue on the host (the stage); mail for the \
             domain (the recipient) waits. {literal} {x y}"
        );
        // A role the runbook does not describe is named as it is.
        let s = subject(FindingCode::NextHopTimeout, Some("edge"));
        assert!(rb
            .hint(s, &Facts::default())
            .contains("queue on edge (edge)"));
    }

    /// A cached hint is what rendering gives, for every code, role and stage, also past the
    /// subjects the cache keeps and when a finding already carries another hint.
    #[test]
    fn cached_hints_are_the_rendered_ones() {
        let rb = Runbook::parse(SITE).unwrap();
        let facts = Facts {
            recipient: Some("bob@example.test".into()),
        };
        let mut cache = HintCache::default();
        let roles = [None, Some("mx"), Some("dell"), Some("other")];
        for round in 0..2 {
            for code in FindingCode::ALL {
                for role in roles {
                    for stage in [None, Some("ec2"), role] {
                        let mut f = Finding::new(code, role, "m");
                        f.stage = stage.map(str::to_owned);
                        let want = rb.hint(Subject::of(&f), &facts);
                        let mut batch = [f];
                        rb.apply_cached(&mut batch, &facts, &mut cache);
                        assert_eq!(batch[0].hint, want, "{round} {code} {role:?} {stage:?}");
                    }
                }
            }
        }
        assert_eq!(cache.kept.len(), HintCache::CAP);
    }

    #[test]
    fn role_tables_override_the_code_and_components_are_structured() {
        let rb = Runbook::parse(SITE).unwrap();
        let facts = Facts::default();
        let on_mx = rb.incident(subject(FindingCode::AuthFailed, Some("mx")), &facts);
        assert_eq!(on_mx.component, "MTA");
        assert_eq!(on_mx.component_title, "Mail Transfer Agent");
        assert_eq!(on_mx.impact, "Submission");
        let on_store = rb.incident(subject(FindingCode::AuthFailed, Some("store")), &facts);
        assert_eq!(on_store.component, "RELAY");
        assert_eq!(on_store.component_title, "Relay");
        assert_eq!(on_store.impact, "Outbound mail through the smarthost");
        // The hint is not overridden on that role: the code's stands.
        assert_eq!(on_store.hint, "Check the credentials for the smarthost.");
        let t = rb.incident(subject(FindingCode::NextHopTimeout, Some("mx")), &facts);
        assert_eq!(
            (t.component.as_str(), t.severity),
            ("NET", IncidentSeverity::Critical)
        );
    }

    /// A role `[roles]` does not describe takes the other roles' texts, then the code's; a
    /// described role never takes them, also where its own table lacks the text.
    #[test]
    fn other_roles_texts_stand_on_roles_the_runbook_does_not_describe() {
        let rb = Runbook::parse(SITE).unwrap();
        let facts = Facts::default();
        let on = |role| rb.incident(subject(FindingCode::AuthFailed, role), &facts);
        let edge = on(Some("edge"));
        assert_eq!(edge.hint, "Check the client's password on edge.");
        assert_eq!(
            (edge.component.as_str(), edge.impact.as_str()),
            ("MTA", "Submission")
        );
        assert_eq!(on(Some("mx")).hint, "Check the credentials for the relay.");
        assert_eq!(
            on(Some("store")).hint,
            "Check the credentials for the smarthost."
        );
        assert_eq!(on(None).hint, "Check the credentials for the relay.");
        let nested = "[finding.auth_failed.other_roles.role.mx]\nhint = \"x\"\n";
        let e = Runbook::parse(nested).unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("finding.auth_failed.other_roles"),
            "{e}"
        );
    }

    #[test]
    fn undescribed_codes_get_neutral_words() {
        let rb = Runbook::parse(SITE).unwrap();
        assert!(!rb.describes(FindingCode::MailboxFull));
        let t = rb.incident(
            subject(FindingCode::MailboxFull, Some("mx")),
            &Facts::default(),
        );
        assert_eq!(t.component, "MAIL");
        assert_eq!(t.issue_type, "MAILBOX_FULL");
        assert_eq!(t.severity, IncidentSeverity::Medium);
        assert_eq!(t.symptoms, "Mailbox full");
        assert!(t.hint.contains("evidence"));
        // The empty runbook works the same way.
        let empty = Runbook::parse("").unwrap();
        assert_eq!(empty, Runbook::default());
        assert!(!empty
            .hint(subject(FindingCode::DnsError, None), &Facts::default())
            .is_empty());
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let cases: &[(&str, usize, &str)] = &[
            ("[finding.dns_error]\nhnit = \"x\"\n", 2, "hnit"),
            ("[finding.no_such_code]\nhint = \"x\"\n", 1, "no_such_code"),
            ("[roles.mx]\nname = \"a\"\nnext = \"b\"\n", 3, "next"),
            ("colour = 1\n", 1, "colour"),
            (
                "[finding.dns_error]\nhint = \"ok\"\nimpact = \"on {host}\"\n",
                3,
                "finding.dns_error.impact: unknown placeholder {host}",
            ),
            (
                "[finding.dns_error]\ncomponent = \"../etc\"\n",
                2,
                "finding.dns_error.component",
            ),
            (
                "[finding.dns_error.role.mx]\nissue_type = \"lower\"\n",
                2,
                "finding.dns_error.role.mx.issue_type",
            ),
            ("[finding.dns_error]\nseverity = \"urgent\"\n", 2, "urgent"),
            ("[components]\n\"a b\" = \"x\"\n", 2, "components.a b"),
            ("[roles.mx]\nname = \"{role}\"\n", 2, "roles.mx.name"),
        ];
        for (src, line, needle) in cases {
            let e = Runbook::parse(src).unwrap_err();
            assert_eq!(e.line, Some(*line), "{src}: {e}");
            assert!(e.to_string().contains(needle), "{src}: {e}");
        }
        let e = Runbook::parse("[finding.dns_error.role.a.role.b]\nhint = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("finding.dns_error.role.a"), "{e}");
    }

    #[test]
    fn scanning_never_panics_on_odd_braces() {
        let rb = Runbook::default();
        let s = subject(FindingCode::DnsError, Some("mx"));
        for text in [
            "{",
            "}",
            "{{",
            "}}}",
            "{role",
            "{}",
            "x{ROLE}y",
            "{rôle}",
            "é{role}é",
        ] {
            let _ = rb.render(text, s, &Facts::default());
        }
        assert_eq!(rb.render("é{role}é{", s, &Facts::default()), "émxé{");
        assert_eq!(rb.render("{Role} {}", s, &Facts::default()), "{Role} {}");
    }

    #[test]
    fn the_default_runbook_describes_every_code() {
        let rb = Runbook::parse(DEFAULT_RUNBOOK).unwrap();
        assert_eq!(&rb, Runbook::builtin());
        for code in FindingCode::ALL {
            assert!(rb.describes(code), "{code}");
            let t = rb.incident(subject(code, None), &Facts::default());
            assert!(t.hint.len() > 60, "{code}: {}", t.hint);
            for text in [
                &t.impact,
                &t.symptoms,
                &t.root_cause,
                &t.prevention,
                &t.related,
            ] {
                assert!(!text.is_empty() && !text.contains('{'), "{code}: {text}");
            }
        }
    }
}
