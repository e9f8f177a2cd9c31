//! Traffic Server's YAML files, read with their line numbers (`marked-yaml`): every problem
//! names the line of the item or key it is about. Shared with `edgetls-policy` (`sni.yaml`).

pub use marked_yaml::Node;
use marked_yaml::loader::{LoadError, LoaderOptions, parse_yaml_with_options};

/// A problem at a line (1-based; 0 when unknown).
pub type LineError = (u32, String);

/// Parses a YAML document whose top level is a mapping; a duplicate key is an error. The
/// error is the line (1-based; 0 when unknown) and what is wrong. A file of only blank lines
/// and comments is no document (`None`), not an error.
pub fn document(text: &str) -> Result<Option<Node>, LineError> {
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Ok(None);
    }
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    parse_yaml_with_options(0, text, options)
        .map(Some)
        .map_err(|e| {
            let marker = match &e {
                LoadError::TopLevelMustBeMapping(m)
                | LoadError::TopLevelMustBeSequence(m)
                | LoadError::UnexpectedAnchor(m)
                | LoadError::MappingKeyMustBeScalar(m)
                | LoadError::UnexpectedTag(m)
                | LoadError::ScanError(m, _) => Some(*m),
                LoadError::DuplicateKey(d) => d.key.span().start().copied(),
            };
            let line = marker.map_or(0, |m| m.line() as u32);
            (line, format!("YAML: {e}"))
        })
}

/// The line (1-based) a node starts on.
pub fn line_of(node: &Node) -> u32 {
    node.span().start().map_or(0, |m| m.line() as u32)
}

/// The line (1-based) of a mapping's key.
pub fn key_line(key: &marked_yaml::types::MarkedScalarNode) -> u32 {
    key.span().start().map_or(0, |m| m.line() as u32)
}

/// The list under `key` of a document's top-level mapping, and warnings (line, text) for the
/// other top-level keys, which the file's reader does not use.
pub fn top_list<'a>(
    doc: &'a Node,
    key: &str,
) -> Result<(Vec<&'a Node>, Vec<LineError>), LineError> {
    let Some(map) = doc.as_mapping() else {
        return Err((
            line_of(doc),
            format!("the top level must be a mapping with {key}:"),
        ));
    };
    let mut others = Vec::new();
    let mut list = None;
    for (k, v) in map.iter() {
        if k.as_str() == key {
            list = Some(v);
        } else {
            let line = key_line(k);
            others.push((
                line,
                format!(
                    "top-level key {:?} ignored (only {key}: is read)",
                    k.as_str()
                ),
            ));
        }
    }
    let Some(list) = list else {
        return Err((line_of(doc), format!("no {key}: list")));
    };
    match list {
        Node::Sequence(items) => Ok((items.iter().collect(), others)),
        // `key:` with nothing after it: an empty list.
        Node::Scalar(s) if s.as_str().is_empty() => Ok((Vec::new(), others)),
        _ => Err((line_of(list), format!("{key}: must be a list (- items)"))),
    }
}
