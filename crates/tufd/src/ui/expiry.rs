//! Expiry: every role of both flavours on one time axis, drawn by the server as SVG, with the
//! metadata only offline keys can renew marked when it is inside the window in which tufd
//! warns ([`crate::upkeep::EXPIRY_WARNING_SECS`]).
//!
//! The axis is logarithmic in the time left: a timestamp valid for a day and a root valid for
//! a year must both be readable on it.

use maud::{html, Markup};
use tuf_core::Role;

use super::layout::{relative, when};
use super::store::Head;
use crate::repo::Flavour;
use crate::upkeep::{renewed_offline, EXPIRY_WARNING_SECS};

/// How a role stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Expired,
    /// Only offline keys can renew it, and it expires inside the warning window.
    Warning,
    /// The server re-signs it before it expires.
    RenewedByServer,
    Fine,
}

impl Standing {
    fn label(self) -> &'static str {
        match self {
            Standing::Expired => "expired",
            Standing::Warning => "renew soon",
            Standing::RenewedByServer => "renewed by the server",
            Standing::Fine => "fine",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Standing::Expired => "expired",
            Standing::Warning => "warning",
            Standing::RenewedByServer => "online",
            Standing::Fine => "fine",
        }
    }
}

/// One role of one flavour on the axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    pub flavour: Flavour,
    pub role: Role,
    pub version: i64,
    pub expires: i64,
    pub left: i64,
    pub standing: Standing,
}

/// The roles in a fixed order (CI first, then production; root to timestamp).
pub fn bars(heads: &[Head], now: i64) -> Vec<Bar> {
    let mut out: Vec<Bar> = heads
        .iter()
        .map(|h| {
            let left = h.expires - now;
            let offline = renewed_offline(h.flavour, h.role);
            let standing = if left <= 0 {
                Standing::Expired
            } else if !offline {
                Standing::RenewedByServer
            } else if left < EXPIRY_WARNING_SECS {
                Standing::Warning
            } else {
                Standing::Fine
            };
            Bar {
                flavour: h.flavour,
                role: h.role,
                version: h.version,
                expires: h.expires,
                left,
                standing,
            }
        })
        .collect();
    out.sort_by_key(|b| (b.flavour, Role::ALL.iter().position(|r| *r == b.role)));
    out
}

/// The logarithmic time axis: 0 at "now", `width` at `span` seconds from now.
#[derive(Clone, Copy, Debug)]
pub struct Axis {
    pub span: i64,
    pub width: f64,
}

impl Axis {
    /// An axis long enough for the latest expiry and the warning window.
    pub fn for_bars(bars: &[Bar], width: f64) -> Self {
        let latest = bars.iter().map(|b| b.left).max().unwrap_or(0);
        Self {
            span: latest.max(EXPIRY_WARNING_SECS * 2),
            width,
        }
    }

    /// The x position of `secs` from now (clamped to the axis; the past is at 0).
    pub fn x(&self, secs: i64) -> f64 {
        let hours = |s: i64| (s.max(0) as f64 / 3600.0).ln_1p();
        (hours(secs.min(self.span)) / hours(self.span)) * self.width
    }

    /// Tick marks that fit on this axis: (seconds, label).
    pub fn ticks(&self) -> Vec<(i64, &'static str)> {
        const DAY: i64 = 86_400;
        [
            (3600, "1 h"),
            (DAY, "1 day"),
            (7 * DAY, "1 week"),
            (EXPIRY_WARNING_SECS, "30 days"),
            (90 * DAY, "90 days"),
            (365 * DAY, "1 year"),
            (2 * 365 * DAY, "2 years"),
            (5 * 365 * DAY, "5 years"),
            (10 * 365 * DAY, "10 years"),
        ]
        .into_iter()
        .filter(|(s, _)| *s <= self.span)
        .collect()
    }
}

const LABEL_W: f64 = 150.0;
const AXIS_W: f64 = 640.0;
const ROW_H: f64 = 26.0;
const TOP: f64 = 30.0;

pub fn render(bars: &[Bar], now: i64) -> Markup {
    let axis = Axis::for_bars(bars, AXIS_W);
    let height = TOP + ROW_H * bars.len() as f64 + 10.0;
    let warn_x = LABEL_W + axis.x(EXPIRY_WARNING_SECS);
    html! {
        p.hint {
            "Time left until each role of both flavours expires, on a logarithmic axis from now. "
            "The shaded band is tufd's warning window (" (EXPIRY_WARNING_SECS / 86_400) " days): "
            "roots and production targets are signed with offline keys, so only their holders "
            "can renew them. The server re-signs the other roles itself."
        }
        svg.expiry xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {} {height}", LABEL_W + AXIS_W + 20.0))
            aria-label="Expiry of every role of the CI and production metadata" {
            title { "Expiry of every role, now at the left" }
            rect.window x=(LABEL_W) y=(TOP - 8.0) width=(format!("{:.1}", warn_x - LABEL_W)) height=(height - TOP) {}
            @for (secs, label) in axis.ticks() {
                @let x = LABEL_W + axis.x(secs);
                line.tick x1=(format!("{x:.1}")) x2=(format!("{x:.1}")) y1=(TOP - 8.0) y2=(height - 6.0) {}
                text.tick x=(format!("{x:.1}")) y=(TOP - 14.0) text-anchor="middle" { (label) }
            }
            @for (i, b) in bars.iter().enumerate() {
                @let y = TOP + ROW_H * i as f64;
                @let w = axis.x(b.left).max(3.0);
                g class=(format!("bar {}", b.standing.class())) data-role=(format!("{}/{}", b.flavour.as_str(), b.role.as_str())) {
                    text.label x="4" y=(format!("{:.1}", y + 13.0)) { (b.flavour.as_str()) " " (b.role.as_str()) }
                    rect x=(LABEL_W) y=(format!("{y:.1}")) width=(format!("{w:.1}")) height="16" {
                        title { (b.flavour.as_str()) " " (b.role.as_str()) " v" (b.version) " expires " (when(b.expires)) }
                    }
                    @if b.standing == Standing::Expired || b.standing == Standing::Warning {
                        text.flag x=(format!("{:.1}", LABEL_W + w + 6.0)) y=(format!("{:.1}", y + 13.0)) { (b.standing.label()) }
                    }
                }
            }
        }
        table.expiry {
            thead { tr { th { "Flavour" } th { "Role" } th { "Version" } th { "Expires" } th { "Left" } th { "Standing" } } }
            tbody {
                @for b in bars {
                    tr class=(b.standing.class()) {
                        td { (b.flavour.as_str()) } td { (b.role.as_str()) } td { (b.version) }
                        td { (when(b.expires)) } td { (relative(b.expires - now)) }
                        td { (b.standing.label()) @if b.standing == Standing::Warning { " — " (renew_hint(b.role)) } }
                    }
                }
            }
        }
    }
}

/// What the owner runs to renew offline-signed metadata (as upkeep's warning says).
fn renew_hint(role: Role) -> &'static str {
    if role == Role::Root {
        "a root update signed by the root key holders: tufctl keys resign-root"
    } else {
        "re-signed with the offline targets key: tufctl waves resign, or a new wave"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn head(flavour: Flavour, role: Role, left: i64) -> Head {
        Head {
            flavour,
            role,
            version: 3,
            expires: 1_000_000 + left,
        }
    }

    #[test]
    fn offline_roles_inside_the_window_are_marked() {
        let now = 1_000_000;
        let heads = [
            head(Flavour::Prod, Role::Targets, 10 * DAY),
            head(Flavour::Ci, Role::Root, 300 * DAY),
            head(Flavour::Ci, Role::Timestamp, DAY / 2),
            head(Flavour::Prod, Role::Root, 29 * DAY),
            head(Flavour::Ci, Role::Targets, 10 * DAY),
            head(Flavour::Prod, Role::Snapshot, -5),
        ];
        let b = bars(&heads, now);
        let got: Vec<(Flavour, Role, Standing)> =
            b.iter().map(|b| (b.flavour, b.role, b.standing)).collect();
        assert_eq!(
            got,
            [
                (Flavour::Ci, Role::Root, Standing::Fine),
                (Flavour::Ci, Role::Targets, Standing::RenewedByServer),
                (Flavour::Ci, Role::Timestamp, Standing::RenewedByServer),
                (Flavour::Prod, Role::Root, Standing::Warning),
                (Flavour::Prod, Role::Targets, Standing::Warning),
                (Flavour::Prod, Role::Snapshot, Standing::Expired),
            ]
        );
        let svg = render(&b, now).into_string();
        assert_eq!(svg.matches("<g class=\"bar ").count(), 6);
        assert_eq!(
            svg.matches("renew soon").count(),
            4,
            "2 flags and 2 table cells"
        );
        assert!(svg.contains("class=\"window\""));
    }

    #[test]
    fn the_axis_grows_with_time_left_and_keeps_short_roles_visible() {
        let axis = Axis {
            span: 365 * DAY,
            width: 600.0,
        };
        let xs: Vec<f64> = [-10, 0, 3600, DAY, 30 * DAY, 365 * DAY, 3650 * DAY]
            .iter()
            .map(|s| axis.x(*s))
            .collect();
        assert_eq!(xs[0], 0.0);
        assert!(xs.windows(2).all(|w| w[0] <= w[1]), "{xs:?}");
        assert!(xs[3] > 100.0, "a day is visible: {xs:?}");
        assert!((xs[5] - 600.0).abs() < 1e-9 && (xs[6] - 600.0).abs() < 1e-9);
        let labels: Vec<&str> = axis.ticks().into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            labels,
            ["1 h", "1 day", "1 week", "30 days", "90 days", "1 year"]
        );
    }
}
