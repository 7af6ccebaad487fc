//! `load.svg`: the load tables drawn as grouped bars, written as SVG text by hand (xtask has
//! no dependencies).
//!
//! One panel per load and figure: CPU µs per request and thousands of requests per second,
//! one bar per server (the median over the rounds) with a whisker from the smallest to the
//! largest round. Bars are coloured by role: tokio baseline, bare io-uring floor, fio on
//! io_uring, fio on epoll.

use std::fmt::Write as _;

use super::Role;
use super::report::{Figure, Table};

const PANEL_WIDTH: f64 = 460.0;
const MARGIN_LEFT: f64 = 110.0;
const MARGIN_TOP: f64 = 50.0;
const BAR_HEIGHT: f64 = 18.0;
const BAR_GAP: f64 = 8.0;
const PLOT_WIDTH: f64 = 200.0;

/// The colour of a server's bars.
fn colour(role: Role) -> &'static str {
    match role {
        Role::Baseline => "#7f7f7f",
        Role::Floor => "#2ca02c",
        Role::Uring => "#1f77b4",
        Role::Epoll => "#ff7f0e",
    }
}

/// Escapes text for an SVG text node or attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole picture: two panels (CPU/request, throughput) per load.
pub(super) fn svg(tables: &[Table]) -> String {
    let width = 2.0 * PANEL_WIDTH;
    let height = MARGIN_TOP + tables.iter().map(panel_height).sum::<f64>() + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" \
         font-size=\"15\" font-weight=\"bold\">Loopback load benchmark: medians over the rounds, \
         whiskers min–max</text>"
    );
    let legend = [
        ("tokio baseline", Role::Baseline),
        ("bare io-uring", Role::Floor),
        ("fio io_uring", Role::Uring),
        ("fio epoll", Role::Epoll),
    ];
    for (i, (name, role)) in legend.iter().enumerate() {
        let x = 10.0 + 110.0 * i as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"28\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"37\">{name}</text>",
            colour(*role),
            x + 14.0
        );
    }
    let mut top = MARGIN_TOP;
    for table in tables {
        let title = format!("{}: CPU µs per request", table.load.name());
        panel(&mut out, 0.0, top, &title, table, |row| row.cpu_us, 1.0);
        let title = format!("{}: thousand requests per second", table.load.name());
        panel(
            &mut out,
            PANEL_WIDTH,
            top,
            &title,
            table,
            |row| row.per_second,
            1e-3,
        );
        top += panel_height(table);
    }
    out.push_str("</svg>\n");
    out
}

/// The height of a load's panels: the title, a bar per server, and a gap.
fn panel_height(table: &Table) -> f64 {
    40.0 + (BAR_HEIGHT + BAR_GAP) * table.rows.len() as f64
}

/// One panel of horizontal bars, one per row of `table`, of `pick(row)` times `scale`.
fn panel(
    out: &mut String,
    left: f64,
    top: f64,
    title: &str,
    table: &Table,
    pick: fn(&super::report::Row) -> Option<Figure>,
    scale: f64,
) {
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text>",
        left + 10.0,
        top + 14.0,
        escape(title)
    );
    let largest = table
        .rows
        .iter()
        .filter_map(|row| pick(row).map(|figure| figure.value.hi * scale))
        .fold(0.0, f64::max);
    let full = if largest > 0.0 { largest } else { 1.0 };
    let x0 = left + MARGIN_LEFT;
    let _ = writeln!(
        out,
        "<line x1=\"{x0}\" y1=\"{}\" x2=\"{x0}\" y2=\"{}\" stroke=\"black\"/>",
        top + 22.0,
        top + 22.0 + (BAR_HEIGHT + BAR_GAP) * table.rows.len() as f64
    );
    for (r, row) in table.rows.iter().enumerate() {
        let y = top + 26.0 + (BAR_HEIGHT + BAR_GAP) * r as f64;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            x0 - 6.0,
            y + BAR_HEIGHT * 0.7,
            escape(row.contender.name)
        );
        let Some(figure) = pick(row) else {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"red\">failed</text>",
                x0 + 4.0,
                y + BAR_HEIGHT * 0.7
            );
            continue;
        };
        let at = |value: f64| x0 + PLOT_WIDTH * (value * scale / full).max(0.0);
        let (mid, lo, hi) = (
            at(figure.value.mid),
            at(figure.value.lo),
            at(figure.value.hi),
        );
        let _ = writeln!(
            out,
            "<rect x=\"{x0}\" y=\"{y}\" width=\"{:.1}\" height=\"{BAR_HEIGHT}\" fill=\"{}\"/>",
            mid - x0,
            colour(row.contender.role)
        );
        let middle = y + BAR_HEIGHT / 2.0;
        let _ = writeln!(
            out,
            "<path d=\"M{lo:.1} {middle} H{hi:.1} M{lo:.1} {:.1} V{:.1} M{hi:.1} {:.1} V{:.1}\" \
             stroke=\"black\" fill=\"none\"/>",
            middle - 4.0,
            middle + 4.0,
            middle - 4.0,
            middle + 4.0
        );
        let ratio = figure
            .ratio
            .filter(|_| row.contender.role != Role::Baseline)
            .map_or(String::new(), |ratio| format!(" ({:.2}x tokio)", ratio.mid));
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\">{:.2}{}</text>",
            hi.max(mid) + 4.0,
            y + BAR_HEIGHT * 0.7,
            figure.value.mid * scale,
            escape(&ratio)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }

    #[test]
    fn every_served_load_gets_two_panels_with_a_bar_per_server() {
        use super::super::report::Results;
        use super::super::{CONTENDERS, Load, Run};
        let run = |cpu| {
            Some(Run {
                per_second: 1000.0,
                p99_ms: None,
                cpu_us_per_request: cpu,
                peak_rss_mib: 1.0,
            })
        };
        let mut results = Results::default();
        // tokio-echo, bare-echo and ring-echo.
        for index in [0, 2, 4] {
            assert!(CONTENDERS[index].name.ends_with("-echo"));
            results
                .timed
                .insert((index, Load::RedisP1), vec![run(2.0), run(3.0)]);
        }
        let picture = svg(&results.tables());
        assert_eq!(picture.matches("redis-P1: CPU").count(), 1);
        assert_eq!(picture.matches("redis-P1: thousand").count(), 1);
        // Every contender of the table has a bar in both panels, whiskers from 2 to 3.
        assert_eq!(picture.matches("<path ").count(), 2 * 3);
        assert!(picture.contains("2.50"), "{picture}");
    }

    #[test]
    fn no_tables_still_make_a_well_formed_picture() {
        let picture = svg(&[]);
        assert!(picture.starts_with("<svg "));
        assert!(picture.trim_end().ends_with("</svg>"));
    }
}
