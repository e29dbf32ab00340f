//! Terminal tables and Markdown, drawn with comfy-table.

use comfy_table::{ContentArrangement, Table, presets};

use super::sections::{Section, sections, source_line};
use crate::report::Report;

fn table(section: &Section, preset: &str, width: Option<u16>) -> Table {
    let mut t = Table::new();
    t.load_preset(preset).set_header(&section.header);
    if let Some(w) = width {
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(w);
    }
    for row in &section.rows {
        t.add_row(row);
    }
    t
}

/// The report as terminal tables, wrapped to `width` columns.
pub fn terminal(report: &Report, max_findings: usize, width: u16) -> String {
    let mut out = format!("neuro-batch analyze — {}\n", source_line(report));
    for note in &report.source.notes {
        out += &format!("note: {note}\n");
    }
    out += &format!("\n{}\n", report.headline);
    for s in sections(report, max_findings) {
        out += &format!("\n{}\n", s.title);
        if !s.rows.is_empty() {
            out += &table(&s, presets::UTF8_FULL_CONDENSED, Some(width)).to_string();
            out.push('\n');
        }
        if let Some(f) = &s.footer {
            out += &format!("{f}\n");
        }
    }
    out
}

/// The report as GitHub-flavoured Markdown.
pub fn markdown(report: &Report, max_findings: usize) -> String {
    let mut out = format!("## neuro-batch analyze\n\n{}\n", source_line(report));
    for note in &report.source.notes {
        out += &format!("\n> note: {note}\n");
    }
    out += &format!("\n**{}**\n", report.headline);
    for s in sections(report, max_findings) {
        out += &format!("\n### {}\n\n", s.title);
        if !s.rows.is_empty() {
            let escaped = Section {
                title: String::new(),
                part: s.part,
                header: s.header.clone(),
                rows: s
                    .rows
                    .iter()
                    .map(|r| r.iter().map(|c| markdown_cell(c)).collect())
                    .collect(),
                footer: None,
            };
            out += &table(&escaped, presets::ASCII_MARKDOWN, None).to_string();
            out += "\n\n";
        }
        if let Some(f) = &s.footer {
            out += &format!("{f}\n");
        }
    }
    out
}

/// A table cell in Markdown: pipes escaped, links shortened to `[open](…)` (Grafana links are
/// hundreds of characters).
fn markdown_cell(cell: &str) -> String {
    if cell.starts_with("http://") || cell.starts_with("https://") {
        format!("[open]({cell})")
    } else {
        cell.replace('|', "\\|")
    }
}

#[cfg(test)]
mod tests {
    use super::markdown_cell;

    #[test]
    fn markdown_cells_escape_pipes_and_shorten_links() {
        assert_eq!(markdown_cell("a|b"), "a\\|b");
        assert_eq!(
            markdown_cell("http://localhost:3000/explore?x=1"),
            "[open](http://localhost:3000/explore?x=1)"
        );
    }
}
