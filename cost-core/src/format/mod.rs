//! Price files: the project's own TOML format ([`native`]) and LiteLLM's JSON ([`litellm`]).
//!
//! [`PriceTable::from_text`] and [`PriceTable::from_path`] detect the format from the content:
//! a file whose first non-blank character is `{` is LiteLLM's JSON; anything else is read as the
//! native TOML format.

pub mod litellm;
pub mod native;

use std::path::Path;

use thiserror::Error;

use crate::table::{PriceTable, PriceTableBuilder};

/// The formats a price file can be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceFormat {
    /// The project's own TOML format.
    Native,
    /// LiteLLM's `model_prices_and_context_window.json`.
    LiteLlm,
}

impl PriceFormat {
    /// Detects the format from the content.
    pub fn detect(text: &str) -> PriceFormat {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .as_bytes()
            .first()
        {
            Some(b'{') => PriceFormat::LiteLlm,
            _ => PriceFormat::Native,
        }
    }
}

/// What kind of problem a price file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceFileErrorKind {
    /// The file cannot be read.
    Io,
    /// The text is not valid TOML or JSON.
    Syntax,
    /// The text is well formed but an entry is wrong (a bad price, an unknown field, an alias to
    /// a missing model).
    Invalid,
}

/// A price file that cannot be loaded. Its `Display` names the file, then the line and column
/// where known: `prices.toml:12:9: …`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{origin}{}: {message}", position(*.line, *.column))]
pub struct PriceFileError {
    /// The file (or `embedded`, or the name given to [`PriceTable::from_text`]).
    pub origin: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// 1-based column, where known.
    pub column: Option<usize>,
    /// The kind of problem.
    pub kind: PriceFileErrorKind,
    /// What is wrong.
    pub message: String,
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl PriceFileError {
    pub(crate) fn at_offset(
        origin: &str,
        text: &str,
        offset: Option<usize>,
        kind: PriceFileErrorKind,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = match offset {
            Some(offset) => {
                let (l, c) = line_column(text, offset);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        PriceFileError {
            origin: origin.to_owned(),
            line,
            column,
            kind,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

impl PriceTable {
    /// Loads a table from text in either format (detected from the content); `origin` names it
    /// in errors and provenance.
    pub fn from_text(text: &str, origin: &str) -> Result<PriceTable, PriceFileError> {
        match PriceFormat::detect(text) {
            PriceFormat::Native => native::parse(text, origin),
            PriceFormat::LiteLlm => litellm::parse(text, origin),
        }
    }

    /// Loads a table from a file in either format.
    pub fn from_path(path: impl AsRef<Path>) -> Result<PriceTable, PriceFileError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PriceFileError {
            origin: origin.clone(),
            line: None,
            column: None,
            kind: PriceFileErrorKind::Io,
            message: e.to_string(),
        })?;
        PriceTable::from_text(&text, &origin)
    }
}

/// A short, stable digest of a file's content, for versions of tables that carry none.
pub(crate) fn content_digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The table `builder` holds, read from the file `origin`: a table that cannot be built (an
/// alias of a model it does not have, …) is an error naming the file.
pub(crate) fn build_table(
    builder: PriceTableBuilder,
    origin: &str,
) -> Result<PriceTable, PriceFileError> {
    builder.build().map_err(|e| PriceFileError {
        origin: origin.to_owned(),
        line: None,
        column: None,
        kind: PriceFileErrorKind::Invalid,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_of_offsets() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4));
        assert_eq!(line_column(text, 8), (3, 1));
    }

    #[test]
    fn an_error_names_as_much_of_its_place_as_is_known() {
        let error = |line, column| PriceFileError {
            origin: "prices.toml".into(),
            line,
            column,
            kind: PriceFileErrorKind::Invalid,
            message: "bad".into(),
        };
        assert_eq!(
            error(Some(12), Some(9)).to_string(),
            "prices.toml:12:9: bad"
        );
        assert_eq!(error(Some(12), None).to_string(), "prices.toml:12: bad");
        assert_eq!(error(None, None).to_string(), "prices.toml: bad");
    }

    #[test]
    fn format_detection() {
        assert_eq!(PriceFormat::detect("  \n{\"a\": {}}"), PriceFormat::LiteLlm);
        assert_eq!(PriceFormat::detect("version = \"1\""), PriceFormat::Native);
        assert_eq!(PriceFormat::detect("# {\n"), PriceFormat::Native);
    }
}
