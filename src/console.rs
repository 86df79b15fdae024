//! Console output: the library formats what a person reads during a run and hands it to an [`Output`];
//! the program decides where it goes (the CLI prints it; a test collects it). Nothing in the library
//! prints to the terminal itself; logging (`log`, `RUST_LOG`) and progress bars (indicatif, on stderr)
//! are separate channels.

use std::fmt;
use std::sync::{Arc, Mutex};

/// Where console text goes.
pub trait Reporter: Send + Sync {
    /// Writes `text` as it is (lines end with `\n`).
    fn write(&self, text: &str);
}

/// A reporter that can sit in a configuration: cheap to clone, shown as `Output` in `Debug`.
#[derive(Clone)]
pub struct Output(Arc<dyn Reporter>);

impl Output {
    pub fn new(reporter: impl Reporter + 'static) -> Self {
        Self(Arc::new(reporter))
    }

    /// Discards everything.
    pub fn silent() -> Self {
        Self::new(Silent)
    }

    /// Writes one line.
    pub fn line(&self, text: impl AsRef<str>) {
        let mut s = String::with_capacity(text.as_ref().len() + 1);
        s.push_str(text.as_ref());
        s.push('\n');
        self.0.write(&s);
    }

    /// Writes text as it is.
    pub fn text(&self, text: &str) {
        self.0.write(text);
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Output")
    }
}

struct Silent;

impl Reporter for Silent {
    fn write(&self, _: &str) {}
}

/// Keeps everything written, for tests and for callers that want the text.
#[derive(Default, Clone)]
pub struct Captured(Arc<Mutex<String>>);

impl Captured {
    /// All text written so far.
    pub fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Reporter for Captured {
    fn write(&self, text: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.push_str(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_reporter_in_order() {
        let c = Captured::default();
        let out = Output::new(c.clone());
        out.line("a");
        out.text("b\nc");
        out.line("");
        assert_eq!(c.text(), "a\nb\nc\n");
        Output::silent().line("nothing");
    }
}
