//! Apache Traffic Server 10's `ssl_multicert.yaml`: a top-level `ssl_multicert:` list of
//! mappings with the same fields as the `.config` lines (`ssl_cert_name`, `ssl_key_name`,
//! `ssl_ca_name`, `dest_ip`, `ssl_ocsp_name`, `ssl_key_dialog`, `ssl_ticket_enabled`,
//! `ssl_ticket_number`, `action`). Each item is read as one `.config` line would be, and a
//! problem names the file and the item's line.

use super::multicert::build;
use super::{EntrySpec, SourceOptions, line_problem, line_warning};
use crate::error::Problem;
use crate::yaml::{self, Node};
use std::path::Path;

/// Parses the text of `path` (the file's items in order; problems name their lines).
pub(crate) fn parse(
    path: &Path,
    text: &str,
    opts: &SourceOptions,
) -> (Vec<EntrySpec>, Vec<Problem>) {
    let (cert_dir, key_dir) = opts.dirs(path);
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    let doc = match yaml::document(text) {
        Ok(Some(doc)) => doc,
        Ok(None) => return (specs, problems),
        Err((line, msg)) => {
            problems.push(line_problem(path, line, msg));
            return (specs, problems);
        }
    };
    let items = match yaml::top_list(&doc, "ssl_multicert") {
        Ok((items, others)) => {
            problems.extend(others.into_iter().map(|(l, m)| line_warning(path, l, m)));
            items
        }
        Err((line, msg)) => {
            problems.push(line_problem(path, line, msg));
            return (specs, problems);
        }
    };
    for item in items {
        let line = yaml::line_of(item);
        let fields = match fields(item) {
            Ok(f) => f,
            Err((line, msg)) => {
                problems.push(line_problem(path, line, msg));
                continue;
            }
        };
        match build(path, line, &fields, cert_dir, key_dir, &mut problems) {
            Ok(spec) => specs.push(spec),
            Err(msg) => problems.push(line_problem(path, line, msg)),
        }
    }
    (specs, problems)
}

/// An item's fields as `(key, value)` text, as a `.config` line gives them.
fn fields(item: &Node) -> Result<Vec<(String, String)>, (u32, String)> {
    let Some(map) = item.as_mapping() else {
        return Err((
            yaml::line_of(item),
            "an ssl_multicert item must be a mapping of fields (ssl_cert_name: …)".into(),
        ));
    };
    let mut out = Vec::new();
    for (key, value) in map.iter() {
        let Node::Scalar(v) = value else {
            return Err((
                yaml::line_of(value),
                format!(
                    "{}: one value (text or a number), not a list or mapping",
                    key.as_str()
                ),
            ));
        };
        let key = key.as_str().to_ascii_lowercase();
        // YAML booleans for the 0/1 field.
        let v = match (key.as_str(), v.as_str()) {
            ("ssl_ticket_enabled", "true") => "1".to_string(),
            ("ssl_ticket_enabled", "false") => "0".to_string(),
            (_, v) => v.to_string(),
        };
        out.push((key, v));
    }
    Ok(out)
}
