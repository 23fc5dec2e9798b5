//! The audit log, newest first, a page at a time (`?before=ID` continues below record ID).

use maud::{html, Markup};
use serde_json::Value;

use super::layout::when;
use super::store::AuditRow;

/// Records per page.
pub const PAGE: i64 = 50;

/// One record as shown: its detail as compact JSON text.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// A page of records and the cursor of the next (older) one, when there is one. `rows` is
/// what the store gave for `PAGE + 1`: the extra row only says that more exist.
pub fn page(rows: Vec<AuditRow>) -> (Vec<Record>, Option<i64>) {
    let more = rows.len() as i64 > PAGE;
    let records: Vec<Record> = rows
        .into_iter()
        .take(PAGE as usize)
        .map(|r| Record {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            detail: match serde_json::from_str::<Value>(&r.detail) {
                Ok(v) => v.to_string(),
                Err(_) => r.detail,
            },
        })
        .collect();
    let next = if more {
        records.last().map(|r| r.id)
    } else {
        None
    };
    (records, next)
}

pub fn render(records: &[Record], next: Option<i64>, first_page: bool) -> Markup {
    html! {
        p.hint { "Every change to keys, roots, targets, tokens and waves, newest first." }
        table.audit {
            thead { tr { th { "#" } th { "When" } th { "Who" } th { "What" } th { "Detail" } } }
            tbody {
                @for r in records {
                    tr {
                        td.num { (r.id) }
                        td.when { (when(r.at)) }
                        td { code { (r.actor) } }
                        td { (r.action) }
                        td.detail { code { (r.detail) } }
                    }
                }
            }
        }
        @if records.is_empty() { p.none { "No records." } }
        p.pager {
            @if !first_page { a href="?" { "Newest" } " " }
            @if let Some(n) = next { a rel="next" href=(format!("?before={n}")) { "Older" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, detail: &str) -> AuditRow {
        AuditRow {
            id,
            at: 0,
            actor: "owner:abc".into(),
            action: "wave.create".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn pages_end_with_a_cursor_only_when_more_exist() {
        let rows: Vec<AuditRow> = (0..=PAGE).rev().map(|i| row(i + 1, "{}")).collect();
        let (records, next) = page(rows);
        assert_eq!(records.len() as i64, PAGE);
        assert_eq!(records[0].id, PAGE + 1);
        assert_eq!(next, Some(2));
        let (records, next) = page(vec![row(1, "{}")]);
        assert_eq!((records.len(), next), (1, None));
    }

    #[test]
    fn details_are_text() {
        let (records, _) = page(vec![
            row(1, r#"{"message":"<img src=x onerror=alert(1)>"}"#),
            row(2, "not json <b>"),
        ]);
        let html = render(&records, None, true).into_string();
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("not json &lt;b&gt;"));
        assert!(!html.contains("<img") && !html.contains("<b>"));
    }
}
