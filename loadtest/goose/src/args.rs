//! A tiny `--key value` / `--flag` parser for the driver binaries.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{anyhow, Result};

/// Parsed options: `--key value`, `--key=value`, and bare `--flag` (= "true").
/// Positional words are kept in order.
#[derive(Debug, Default, Clone)]
pub struct Args {
    opts: HashMap<String, String>,
    /// Words without a leading `--`.
    pub positional: Vec<String>,
}

impl Args {
    /// Parses `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Args {
        let mut out = Args::default();
        let mut it = args.into_iter().peekable();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if let Some((k, v)) = name.split_once('=') {
                    out.opts.insert(k.to_owned(), v.to_owned());
                } else if it.peek().is_some_and(|next| !next.starts_with("--")) {
                    let v = it.next().unwrap_or_default();
                    out.opts.insert(name.to_owned(), v);
                } else {
                    out.opts.insert(name.to_owned(), "true".into());
                }
            } else {
                out.positional.push(a);
            }
        }
        out
    }

    /// The raw value of `--key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.opts.get(key).map(String::as_str)
    }

    /// `--key` as a number, or `default`.
    pub fn num<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.replace('_', "").parse::<T>().map_err(|_| anyhow!("--{key}: not a number: {v}")),
        }
    }

    /// `--key` as a boolean (`true/false/1/0/yes/no`), or `default`.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(anyhow!("--{key}: expected true or false, got {v}")),
        }
    }
}
