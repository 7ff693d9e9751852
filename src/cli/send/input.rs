//! `send`'s input: one notification from flags, or many from a JSON or YAML file whose
//! keys are checked against the API's, each validated locally with every error reported.

use std::io::Read;
use std::path::PathBuf;

use serde_json::Value;

use super::{fail, Args, INVALID};
use crate::domain::NotificationRequest;

/// Builds and validates every item locally, reporting all errors at once.
pub(super) fn collect_items(args: &Args) -> anyhow::Result<Vec<NotificationRequest>> {
    let mut lines = Vec::new();
    let mut items = match &args.file {
        Some(path) => {
            let (items, item_lines) = read_file(path)?;
            lines = item_lines;
            items
        }
        None => {
            let channel = args
                .channel
                .ok_or_else(|| fail(INVALID, "--channel is required (or use --file)"))?;
            let to = args
                .to
                .clone()
                .ok_or_else(|| fail(INVALID, "--to is required (or use --file)"))?;
            let content = match (&args.content, &args.content_file) {
                (Some(c), _) => c.clone(),
                (None, Some(path)) => read_text(path)?,
                (None, None) => return Err(fail(INVALID, "--content or --content-file is required")),
            };
            vec![NotificationRequest {
                channel: Some(channel.as_str().to_string()),
                recipient: Some(to),
                content: Some(content),
                priority: Some(args.priority.as_str().to_string()),
                idempotency_key: args.idempotency_key.clone(),
                correlation_id: args.correlation_id.clone(),
                max_retries: args.max_retries,
                scheduled_at: args.scheduled_at.clone(),
            }]
        }
    };
    let mut errors = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        // As on the command line, priority may be left out.
        if item.priority.is_none() {
            item.priority = Some(args.priority.as_str().to_string());
        }
        if let Some(when) = item.scheduled_at.clone() {
            match relative_time(&when) {
                Ok(Some(t)) => item.scheduled_at = Some(t),
                Ok(None) => {}
                Err(e) => errors.push(prefix(args, &lines, i, &format!("scheduledAt: {e}"))),
            }
        }
        if let Err(e) = item.validate(None, 5) {
            errors.push(prefix(args, &lines, i, &e.to_string()));
        }
    }
    if items.is_empty() {
        errors.push("the file holds no notifications".into());
    }
    if !errors.is_empty() {
        return Err(fail(INVALID, errors.join("\n")));
    }
    Ok(items)
}

fn prefix(args: &Args, lines: &[usize], index: usize, message: &str) -> String {
    if let Some(path) = &args.file {
        format!("{}: notifications[{index}].{message}", at_line(path, lines, index))
    } else {
        // Name the flag the user typed.
        let field = message.split(':').next().unwrap_or_default();
        let flag = match field {
            "recipient" => "--to",
            "channel" => "--channel",
            "content" => "--content",
            "priority" => "--priority",
            "scheduledAt" => "--scheduled-at",
            _ => "",
        };
        if flag.is_empty() {
            message.to_string()
        } else {
            format!("{flag} ({message})")
        }
    }
}

/// `+10m` becomes an RFC 3339 time; anything else is left for validation.
fn relative_time(value: &str) -> Result<Option<String>, String> {
    let Some(offset) = value.trim().strip_prefix('+') else {
        return Ok(None);
    };
    let d = humantime::parse_duration(offset)
        .map_err(|e| format!("\"{value}\" is not a relative time such as +10m ({e})"))?;
    let at = chrono::Utc::now() + chrono::Duration::from_std(d).map_err(|e| e.to_string())?;
    Ok(Some(at.to_rfc3339()))
}

fn read_text(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() != "-" {
        return std::fs::read_to_string(path)
            .map_err(|e| fail(INVALID, format!("cannot read {}: {e}", path.display())));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(text)
}

/// `file:line` of item `index` (its first line), or the file alone when unknown.
fn at_line(path: &std::path::Path, lines: &[usize], index: usize) -> String {
    match lines.get(index) {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

/// The line (from 1) on which each item of a send file's list starts: the elements of the
/// top-level JSON array (or of the array right inside the top-level object), or the `- `
/// entries of the least indented YAML block sequence. A best effort, for error messages: a
/// YAML flow list gets no lines, and the message then names the file and the item alone.
fn item_lines(text: &str) -> Vec<usize> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return json_item_lines(text);
    }
    let entries: Vec<(usize, usize)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let rest = l.trim_start();
            (rest == "-" || rest.starts_with("- ")).then(|| (l.len() - rest.len(), i + 1))
        })
        .collect();
    let Some(indent) = entries.iter().map(|(indent, _)| *indent).min() else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|(i, _)| *i == indent)
        .map(|(_, line)| line)
        .collect()
}

fn json_item_lines(text: &str) -> Vec<usize> {
    let (mut line, mut lines) = (1, Vec::new());
    // The open containers: true for an array whose elements are the items.
    let mut stack: Vec<(char, bool)> = Vec::new();
    let (mut in_string, mut escaped, mut expecting_item) = (false, false, false);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if expecting_item && !c.is_whitespace() && c != ']' {
            lines.push(line);
            expecting_item = false;
        }
        match c {
            '"' => in_string = true,
            '[' => {
                let items = stack.is_empty() || (stack.len() == 1 && stack[0].0 == '{' && lines.is_empty());
                stack.push(('[', items));
                expecting_item = items;
            }
            '{' => stack.push(('{', false)),
            ']' | '}' => {
                stack.pop();
                expecting_item = false;
            }
            ',' => expecting_item = stack.last().is_some_and(|(_, items)| *items),
            _ => {}
        }
    }
    lines
}

fn read_file(path: &PathBuf) -> anyhow::Result<(Vec<NotificationRequest>, Vec<usize>)> {
    let text = read_text(path)?;
    let trimmed = text.trim_start();
    let doc: Value = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str(&text).map_err(|e| fail(INVALID, format!("{}: invalid JSON: {e}", path.display())))?
    } else {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| fail(INVALID, format!("{}: invalid YAML: {e}", path.display())))?;
        serde_json::to_value(yaml).map_err(|e| fail(INVALID, format!("{}: {e}", path.display())))?
    };
    let list = match doc {
        Value::Array(items) => Some(items),
        Value::Object(mut map) => match map.remove("notifications") {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        },
        _ => None,
    };
    let Some(list) = list else {
        let message = format!(
            "{}: expected a list, or an object with a `notifications` list",
            path.display()
        );
        return Err(fail(INVALID, message));
    };
    reject_unknown_keys(path, &text)?;
    let lines = item_lines(&text);
    let mut errors = Vec::new();
    let mut items = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        match serde_path_to_error::deserialize::<_, NotificationRequest>(item) {
            Ok(r) => items.push(r),
            Err(e) => errors.push(format!(
                "{}: notifications[{i}].{}: {}",
                at_line(path, &lines, i),
                e.path(),
                e.inner()
            )),
        }
    }
    if !errors.is_empty() {
        return Err(fail(INVALID, errors.join("\n")));
    }
    Ok((items, lines))
}

/// The keys a send file's items may have: the API's field names.
const ITEM_KEYS: &[&str] = &[
    "channel",
    "recipient",
    "content",
    "priority",
    "idempotencyKey",
    "correlationId",
    "maxRetries",
    "scheduledAt",
];

/// The same shape as the file, refusing any key the API does not know (a misspelt
/// `scheduled_at` would otherwise be dropped and the notification sent at once).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct StrictItem {
    channel: Option<serde::de::IgnoredAny>,
    recipient: Option<serde::de::IgnoredAny>,
    content: Option<serde::de::IgnoredAny>,
    priority: Option<serde::de::IgnoredAny>,
    idempotency_key: Option<serde::de::IgnoredAny>,
    correlation_id: Option<serde::de::IgnoredAny>,
    max_retries: Option<serde::de::IgnoredAny>,
    scheduled_at: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct StrictWrapped {
    notifications: Vec<StrictItem>,
}

/// Names the file, the item, the line and the accepted keys (with the closest one).
fn reject_unknown_keys(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let trimmed = text.trim_start();
    let wrapped = !(trimmed.starts_with('[') || trimmed.starts_with('-'));
    let de = serde_yaml::Deserializer::from_str(text);
    let result = if wrapped {
        serde_path_to_error::deserialize::<_, StrictWrapped>(de).map(|_| ())
    } else {
        serde_path_to_error::deserialize::<_, Vec<StrictItem>>(de).map(|_| ())
    };
    let Err(e) = result else {
        return Ok(());
    };
    let message = e.inner().to_string();
    let Some(key) = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split('`').next())
    else {
        // Anything else is reported by the regular parse, with its own wording.
        return Ok(());
    };
    let item = e.path().to_string();
    let item = item.trim_start_matches("notifications").trim_start_matches('.');
    let index = item.trim_start_matches('[').split(']').next().unwrap_or("?");
    let line = e
        .inner()
        .location()
        .map_or_else(String::new, |l| format!(":{}", l.line()));
    let closest = ITEM_KEYS
        .iter()
        .map(|k| {
            (
                strsim::jaro_winkler(&key.to_ascii_lowercase().replace('_', ""), &k.to_ascii_lowercase()),
                k,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or_else(String::new, |(_, k)| format!("did you mean `{k}`? "));
    Err(fail(
        INVALID,
        format!(
            "{}{line}: notifications[{index}]: unknown key `{key}`; {closest}accepted keys: {}",
            path.display(),
            ITEM_KEYS.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_of_a_send_file_is_found_on_its_line() {
        let yaml =
            "# sends\n- channel: sms\n  recipient: x\n  tags:\n    - a\n-   channel: push\n\n- {channel: email}\n";
        assert_eq!(item_lines(yaml), vec![2, 6, 8]);
        let wrapped = "notifications:\n  - channel: sms\n  - channel: push\n";
        assert_eq!(item_lines(wrapped), vec![2, 3]);
        let json = "[\n  {\"channel\": \"sms\", \"content\": \"a, [b]\"},\n\n  {\"channel\": \"push\"}\n]";
        assert_eq!(item_lines(json), vec![2, 4]);
        let wrapped = "{\"notifications\": [\n {\"content\": \"x\\\"]\"},\n {}]}";
        assert_eq!(item_lines(wrapped), vec![2, 3]);
        assert_eq!(item_lines("[]"), Vec::<usize>::new());
    }

    /// The YAML list form is proven end to end by
    /// `terminal::a_send_file_with_an_unknown_key_is_refused_with_file_item_line_and_suggestion`.
    #[test]
    fn unknown_keys_in_a_wrapped_json_send_file_are_named_with_a_suggestion() {
        let json = r#"{"notifications":[{"channel":"sms","recipient":"x","content":"b","prio":"high"}]}"#;
        let err = reject_unknown_keys(std::path::Path::new("f.json"), json)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notifications[0]") && err.contains("`prio`") && err.contains("`priority`"),
            "{err}"
        );
    }
}
