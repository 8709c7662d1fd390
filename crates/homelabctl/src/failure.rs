//! Library errors at the binary edge. `miette!("{e}")` turned each into a string: the type was gone and so
//! was any cause the message did not spell out. [`Failure`] keeps the typed error, renders its message, the
//! causes its message does not already contain (libraries often write `{path}: {source}`, and printing such
//! a source again under it would only repeat it), and one `help` line.

use std::error::Error;
use std::fmt;

/// A typed library error with an optional help line, rendered once by miette in `main`.
#[derive(Debug)]
pub struct Failure {
    error: Box<dyn Error + Send + Sync + 'static>,
    causes: Option<Box<Cause>>,
    help: Option<String>,
}

impl Failure {
    /// Wraps `error`, keeping the causes its message does not already say.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        let message = error.to_string();
        let mut said = vec![message];
        let mut texts = Vec::new();
        let mut next = error.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !said.iter().any(|s| s.contains(&text)) {
                texts.push(text.clone());
                said.push(text);
            }
            next = cause.source();
        }
        let causes = texts
            .into_iter()
            .rev()
            .fold(None, |next, text| Some(Box::new(Cause { text, next })));
        Self {
            error: Box::new(error),
            causes,
            help: None,
        }
    }

    /// The same failure with `help` (what the operator can do) under it.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// `.map_err(failure)`: a library error with no help of its own.
pub fn failure(error: impl Error + Send + Sync + 'static) -> miette::Report {
    Failure::new(error).into()
}

/// A library error with `help` under it.
pub fn failure_help(
    error: impl Error + Send + Sync + 'static,
    help: impl Into<String>,
) -> miette::Report {
    Failure::new(error).help(help).into()
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.causes.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

impl miette::Diagnostic for Failure {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

/// One cause the top message does not say, as text (the typed original stays in [`Failure`]).
#[derive(Debug)]
struct Cause {
    text: String,
    next: Option<Box<Cause>>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.next.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Says {
        path: String,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the repository")]
    struct Hides {
        #[source]
        source: Says,
    }

    fn chain(f: &Failure) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = f.source();
        while let Some(c) = next {
            out.push(c.to_string());
            next = c.source();
        }
        out
    }

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        let f = Failure::new(Says {
            path: "x.yaml".into(),
            source: std::io::Error::other("gone"),
        });
        assert_eq!(f.to_string(), "reading x.yaml: gone");
        assert!(chain(&f).is_empty());
    }

    #[test]
    fn a_cause_the_message_does_not_say_is_kept_once() {
        let f = Failure::new(Hides {
            source: Says {
                path: "x.yaml".into(),
                source: std::io::Error::other("gone"),
            },
        })
        .help("run init");
        assert_eq!(f.to_string(), "cannot open the repository");
        assert_eq!(chain(&f), ["reading x.yaml: gone"]);
        let help = miette::Diagnostic::help(&f).map(|h| h.to_string());
        assert_eq!(help.as_deref(), Some("run init"));
    }
}
