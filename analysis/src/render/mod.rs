//! Drawing a report: terminal tables, Markdown, JSON, CSV and HTML, plus trace waterfalls.

mod compare;
mod csv;
mod html;
mod sections;
mod text;
mod waterfall;

pub use compare::{
    junit as compare_junit, markdown as compare_markdown, terminal as compare_terminal,
};
pub use csv::findings as csv_findings;
pub use html::{HtmlError, page as html};
pub use text::{markdown, terminal};
pub use waterfall::{TraceRow, trace_rows, waterfall};
