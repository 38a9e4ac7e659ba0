//! PURE: what the operator says of a key. Its kind (a Gemini API key, or a Vertex AI Express key
//! served on `/vertex-express/...` only), a group (`models.groups` sends a model's requests to
//! its group's keys only), the Google project it belongs to (keys of one project share their
//! cooldowns, since Google counts quota per project) and a free note. Checked when set, so the
//! pool only ever holds valid labels.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    #[default]
    Gemini,
    Vertex,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Gemini => "gemini",
            KeyKind::Vertex => "vertex",
        }
    }

    pub fn parse(s: &str) -> Result<KeyKind, LabelError> {
        match s {
            "gemini" => Ok(KeyKind::Gemini),
            "vertex" => Ok(KeyKind::Vertex),
            other => Err(LabelError(format!("kind {other:?} is not one of gemini, vertex"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels {
    pub kind: KeyKind,
    pub group: Option<String>,
    pub project: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelError(pub String);

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest group or project name, and the longest note.
const MAX_NAME: usize = 64;
const MAX_NOTE: usize = 500;

/// A group or project name: 1 to 64 characters of `A-Z a-z 0-9 . - _`; `""` clears it.
pub fn name(field: &str, value: &str) -> Result<Option<String>, LabelError> {
    if value.is_empty() {
        return Ok(None);
    }
    let ok = value.len() <= MAX_NAME && value.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
    match ok {
        true => Ok(Some(value.to_string())),
        false => Err(LabelError(format!(
            "{field} {value:?} is not a name: use 1 to {MAX_NAME} characters of A-Z a-z 0-9 . - _ (\"\" clears it)"
        ))),
    }
}

/// A note: free text up to 500 characters, no control characters; `""` clears it.
pub fn note(value: &str) -> Result<Option<String>, LabelError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_NOTE || value.chars().any(char::is_control) {
        return Err(LabelError(format!("a note is at most {MAX_NOTE} characters, with no control characters")));
    }
    Ok(Some(value.to_string()))
}

/// A change of labels: each `Some` sets its field (`""` clears it), `None` leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relabel {
    pub group: Option<Option<String>>,
    pub project: Option<Option<String>>,
    pub note: Option<Option<String>>,
}

impl Relabel {
    /// Checks raw values as the admin API receives them.
    pub fn parse(group: Option<&str>, project: Option<&str>, note: Option<&str>) -> Result<Relabel, LabelError> {
        Ok(Relabel {
            group: group.map(|g| name("group", g)).transpose()?,
            project: project.map(|p| name("project", p)).transpose()?,
            note: note.map(self::note).transpose()?,
        })
    }

    /// The labels the admin API received, checked.
    pub fn of(given: &shared::admin::KeyLabels) -> Result<Relabel, LabelError> {
        Relabel::parse(given.group.as_deref(), given.project.as_deref(), given.note.as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.group.is_none() && self.project.is_none() && self.note.is_none()
    }

    pub fn apply(&self, labels: &Labels) -> Labels {
        let pick = |new: &Option<Option<String>>, old: &Option<String>| new.clone().unwrap_or_else(|| old.clone());
        Labels {
            kind: labels.kind,
            group: pick(&self.group, &labels.group),
            project: pick(&self.project, &labels.project),
            note: pick(&self.note, &labels.note),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_and_cleared_with_an_empty_value() {
        assert_eq!(KeyKind::parse("vertex"), Ok(KeyKind::Vertex));
        assert!(KeyKind::parse("openai").unwrap_err().0.contains("gemini, vertex"));
        assert_eq!(name("group", "paid"), Ok(Some("paid".into())));
        assert_eq!(name("group", ""), Ok(None));
        for bad in ["a b", "x/y", "é", &"a".repeat(65)] {
            assert!(name("project", bad).unwrap_err().0.starts_with("project "), "{bad}");
        }
        assert_eq!(note("bought 2026-11, card 4"), Ok(Some("bought 2026-11, card 4".into())));
        assert!(note("line\nbreak").is_err());
        let before =
            Labels { kind: KeyKind::Vertex, group: Some("paid".into()), project: None, note: Some("n".into()) };
        let change = Relabel::parse(None, Some("proj-1"), Some("")).unwrap();
        let after = change.apply(&before);
        assert_eq!(
            after,
            Labels { kind: KeyKind::Vertex, group: Some("paid".into()), project: Some("proj-1".into()), note: None }
        );
        assert!(Relabel::parse(None, None, None).unwrap().is_empty());
    }
}
