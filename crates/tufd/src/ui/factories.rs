//! The admin's list of Factories, by name, a page at a time (`?after=NAME`).

use maud::{html, Markup};

use super::layout::{relative, tab_href, when};
use super::store::FactoryRow;

/// Factories per page.
pub const PAGE: i64 = 100;

/// The rows to show and the cursor of the next page: `rows` is what the store gave for
/// `PAGE + 1`.
pub fn page(mut rows: Vec<FactoryRow>) -> (Vec<FactoryRow>, Option<String>) {
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next = if more {
        rows.last().map(|r| r.name.clone())
    } else {
        None
    };
    (rows, next)
}

pub fn render(rows: &[FactoryRow], next: Option<&str>, now: i64) -> Markup {
    html! {
        table.factories {
            thead { tr { th { "Factory" } th { "Created" } th { "Root version" } th { "Next offline expiry" } } }
            tbody {
                @for f in rows {
                    tr {
                        td { a href=(tab_href(&f.name, "")) { (f.name) } }
                        td { (when(f.created_at)) }
                        td.num { @if let Some(v) = f.root_version { (v) } }
                        td {
                            @if let Some(e) = f.offline_expires {
                                (when(e)) " (" (relative(e - now)) ")"
                            }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { p.none { "No Factories yet." } }
        @if let Some(n) = next { p.pager { a rel="next" href=(format!("?after={n}")) { "More" } } }
    }
}
