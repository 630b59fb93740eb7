//! Watched folders named by their SPECIAL-USE attribute (RFC 6154) rather than by name, as
//! Gmail needs (its spam folder is `[Gmail]/Spam`, or a translation of it): a `special-use:junk`
//! entry in `folders` (and `junk_folders`) is the folder the server lists with `\Junk`,
//! `special-use:all` the `\All` one (`[Gmail]/All Mail`), and so on. On a Gmail server
//! (capability `X-GM-EXT-1`) a configured Junk/Spam name that the server does not list is looked
//! up the same way, so `folders = ["INBOX", "Spam"]` works there too. Not here: running LIST
//! (`Mailbox::open` does, only when a folder needs it).
use async_imap::types::NameAttribute;

/// How a folder is named by its use in the configuration.
pub const PREFIX: &str = "special-use:";

/// The uses RFC 6154 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
}

impl Use {
    /// `junk` in `special-use:junk` (any case).
    pub fn parse(s: &str) -> Option<Use> {
        Some(match s.to_ascii_lowercase().as_str() {
            "all" => Use::All,
            "archive" => Use::Archive,
            "drafts" => Use::Drafts,
            "flagged" => Use::Flagged,
            "junk" => Use::Junk,
            "sent" => Use::Sent,
            "trash" => Use::Trash,
            _ => return None,
        })
    }

    pub fn of(a: &NameAttribute<'_>) -> Option<Use> {
        Some(match a {
            NameAttribute::All => Use::All,
            NameAttribute::Archive => Use::Archive,
            NameAttribute::Drafts => Use::Drafts,
            NameAttribute::Flagged => Use::Flagged,
            NameAttribute::Junk => Use::Junk,
            NameAttribute::Sent => Use::Sent,
            NameAttribute::Trash => Use::Trash,
            _ => return None,
        })
    }
}

/// A folder as the server listed it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub uses: Vec<Use>,
}

/// Names a Gmail server has under another name (its `\Junk` folder).
const GMAIL_JUNK_NAMES: &[&str] = &["junk", "spam"];

/// The use a configured folder names: by `special-use:`, or (on Gmail) by a junk name.
fn wanted_use(configured: &str, gmail: bool) -> Result<Option<Use>, String> {
    if let Some(rest) = configured.strip_prefix(PREFIX) {
        return Use::parse(rest).map(Some).ok_or_else(|| {
            format!(
                "{configured:?}: unknown special use (all, archive, drafts, flagged, junk, sent, trash)"
            )
        });
    }
    let junk_name = GMAIL_JUNK_NAMES.contains(&configured.to_ascii_lowercase().as_str());
    Ok((gmail && junk_name).then_some(Use::Junk))
}

/// Whether resolving `configured` needs the server's folder list.
pub fn needs_list(configured: &[String], gmail: bool) -> bool {
    configured
        .iter()
        .any(|c| !matches!(wanted_use(c, gmail), Ok(None)))
}

/// The server's name for each configured folder, in order. A `special-use:` entry that no
/// listed folder carries is an error naming it; a plain name is kept unless (on Gmail) the
/// server does not list it and another folder carries the use it stands for.
pub fn resolve(
    configured: &[String],
    listed: &[Listed],
    gmail: bool,
) -> Result<Vec<String>, String> {
    configured
        .iter()
        .map(|c| {
            let Some(u) = wanted_use(c, gmail)? else {
                return Ok(c.clone());
            };
            if !c.starts_with(PREFIX) && listed.iter().any(|l| &l.name == c) {
                return Ok(c.clone());
            }
            match listed.iter().find(|l| l.uses.contains(&u)) {
                Some(l) => Ok(l.name.clone()),
                None if c.starts_with(PREFIX) => Err(format!(
                    "{c}: the server lists no folder with that special use"
                )),
                None => Ok(c.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gmail_folders() -> Vec<Listed> {
        let l = |name: &str, uses: &[Use]| Listed {
            name: name.into(),
            uses: uses.to_vec(),
        };
        vec![
            l("INBOX", &[]),
            l("[Gmail]/All Mail", &[Use::All]),
            l("[Gmail]/Spam", &[Use::Junk]),
            l("[Gmail]/Sent Mail", &[Use::Sent]),
        ]
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn special_use_entries_resolve_to_the_servers_names() {
        let got = resolve(
            &names(&["INBOX", "special-use:junk", "special-use:ALL"]),
            &gmail_folders(),
            false,
        );
        assert_eq!(
            got.unwrap(),
            names(&["INBOX", "[Gmail]/Spam", "[Gmail]/All Mail"])
        );
    }

    #[test]
    fn on_gmail_a_junk_name_it_does_not_list_is_its_junk_folder() {
        let c = names(&["INBOX", "Spam"]);
        assert!(needs_list(&c, true));
        assert!(!needs_list(&c, false), "elsewhere names are names");
        assert_eq!(
            resolve(&c, &gmail_folders(), true).unwrap(),
            names(&["INBOX", "[Gmail]/Spam"])
        );
        // A server that does list "Spam" keeps it.
        let mut listed = gmail_folders();
        listed.push(Listed {
            name: "Spam".into(),
            uses: Vec::new(),
        });
        assert_eq!(resolve(&c, &listed, true).unwrap(), c);
    }

    #[test]
    fn an_unknown_or_missing_use_is_a_clear_error() {
        let e = resolve(&names(&["special-use:spam"]), &gmail_folders(), false).unwrap_err();
        assert!(e.contains("unknown special use"), "{e}");
        let e = resolve(&names(&["special-use:trash"]), &gmail_folders(), false).unwrap_err();
        assert_eq!(
            e,
            "special-use:trash: the server lists no folder with that special use"
        );
    }
}
