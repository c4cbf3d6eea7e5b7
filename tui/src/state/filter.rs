//! The process filter's small query language.
//!
//! ```text
//! mq>1000 node=b name~chat
//! ```
//!
//! Terms are separated by spaces and all must hold; the agents apply every
//! term at the source, so the table's count is the count of matching rows:
//! - `mq>N`, `mq>=N`: mailbox length (`mailbox` is a synonym of `mq`);
//! - `node=X`: the node whose name, or name before `@`, is `X` or starts
//!   with `X` (it must name exactly one known node);
//! - `name~X`: registered name or behaviour contains `X`
//!   (case-insensitive); `name=X` is the same;
//! - `growth>N`: mailbox growth above `N` messages per second;
//! - `sys`: include system processes.
//!
//! A bad query is an error with the offending term and what was expected;
//! the previous filter stays in force.

/// A parsed filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    /// At least this many queued messages.
    pub(crate) min_mailbox: Option<u64>,
    /// The node, as typed (resolved against known nodes by [`Filter::node_in`]).
    pub(crate) node: Option<String>,
    /// Name or behaviour contains this.
    pub(crate) name: Option<String>,
    /// Mailbox growth above this, per second.
    pub(crate) min_growth: Option<i64>,
    /// Include system processes.
    pub(crate) system: bool,
}

/// Why a query does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{term:?}: {expected}")]
pub(crate) struct FilterError {
    /// The term at fault.
    pub(crate) term: String,
    /// What would have been right.
    pub(crate) expected: &'static str,
}

fn error(term: &str, expected: &'static str) -> FilterError {
    FilterError {
        term: term.to_owned(),
        expected,
    }
}

fn number<T: std::str::FromStr>(term: &str, text: &str) -> Result<T, FilterError> {
    let cleaned: String = text.chars().filter(|c| *c != ',' && *c != '_').collect();
    let (digits, scale) = match cleaned.strip_suffix(['k', 'K']) {
        Some(d) => (d.to_owned(), 1_000),
        None => (cleaned, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| error(term, "a whole number, such as 1000 or 2k"))?;
    (n * scale)
        .to_string()
        .parse()
        .map_err(|_| error(term, "a smaller number"))
}

impl Filter {
    /// Parses a query; the empty query is no filter.
    ///
    /// # Errors
    /// [`FilterError`] naming the first term that does not parse.
    pub(crate) fn parse(query: &str) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        for term in query.split_whitespace() {
            if term == "sys" || term == "system" {
                f.system = true;
            } else if let Some(rest) = term
                .strip_prefix("mq")
                .or_else(|| term.strip_prefix("mailbox"))
            {
                f.min_mailbox = Some(if let Some(n) = rest.strip_prefix(">=") {
                    number(term, n)?
                } else if let Some(n) = rest.strip_prefix('>') {
                    number::<u64>(term, n)? + 1
                } else {
                    return Err(error(term, "mq>N or mq>=N"));
                });
            } else if let Some(rest) = term.strip_prefix("growth") {
                let n = rest
                    .strip_prefix('>')
                    .ok_or_else(|| error(term, "growth>N"))?;
                f.min_growth = Some(number(term, n)?);
            } else if let Some(rest) = term.strip_prefix("node") {
                let n = rest
                    .strip_prefix('=')
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| error(term, "node=NAME"))?;
                f.node = Some(n.to_owned());
            } else if let Some(rest) = term.strip_prefix("name") {
                let n = rest
                    .strip_prefix('~')
                    .or_else(|| rest.strip_prefix('='))
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| error(term, "name~TEXT"))?;
                f.name = Some(n.to_owned());
            } else {
                return Err(error(
                    term,
                    "one of mq>N, node=NAME, name~TEXT, growth>N, sys",
                ));
            }
        }
        Ok(f)
    }

    /// The one known node the filter's `node=` names (see [`pick_node`]).
    ///
    /// # Errors
    /// When it names none or several.
    pub(crate) fn node_in<'a>(&self, nodes: &'a [String]) -> Result<Option<&'a str>, FilterError> {
        let Some(want) = &self.node else {
            return Ok(None);
        };
        let term = format!("node={want}");
        match pick_node(nodes, want) {
            Ok(one) => Ok(Some(one)),
            Err(NoNode::None) => Err(error(&term, "the name of a node of the cluster")),
            Err(NoNode::Several) => Err(error(&term, "a longer name: several nodes start with it")),
        }
    }

    /// The query this filter was parsed from, normalised.
    pub(crate) fn to_query(&self) -> String {
        let mut terms = Vec::new();
        if let Some(n) = self.min_mailbox {
            terms.push(format!("mq>={n}"));
        }
        if let Some(n) = &self.node {
            terms.push(format!("node={n}"));
        }
        if let Some(n) = &self.name {
            terms.push(format!("name~{n}"));
        }
        if let Some(n) = self.min_growth {
            terms.push(format!("growth>{n}"));
        }
        if self.system {
            terms.push("sys".to_owned());
        }
        terms.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_term() {
        let f = Filter::parse("mq>1000 node=b name~chat growth>5 sys").unwrap();
        assert_eq!(
            f,
            Filter {
                min_mailbox: Some(1001),
                node: Some("b".into()),
                name: Some("chat".into()),
                min_growth: Some(5),
                system: true,
            }
        );
        assert_eq!(
            Filter::parse("mailbox>=2k").unwrap().min_mailbox,
            Some(2000)
        );
        assert_eq!(Filter::parse("mq>1,000").unwrap().min_mailbox, Some(1001));
        assert_eq!(Filter::parse("  ").unwrap(), Filter::default());
        let f = Filter::parse("name=chat_store").unwrap();
        assert_eq!(Filter::parse(&f.to_query()).unwrap(), f);
    }

    #[test]
    fn bad_queries_name_the_term_and_what_was_expected() {
        let e = Filter::parse("mq>lots").unwrap_err();
        assert_eq!(e.term, "mq>lots");
        assert!(e.to_string().contains("whole number"), "{e}");
        assert_eq!(Filter::parse("mq=3").unwrap_err().expected, "mq>N or mq>=N");
        assert_eq!(Filter::parse("node=").unwrap_err().term, "node=");
        assert_eq!(Filter::parse("name~").unwrap_err().term, "name~");
        let e = Filter::parse("mq>1 colour=red").unwrap_err();
        assert_eq!(e.term, "colour=red");
        assert!(Filter::parse("growth<3").is_err());
        assert!(Filter::parse("mq>99999999999999999999").is_err());
    }

    #[test]
    fn a_node_term_names_exactly_one_node() {
        let nodes = vec![
            "demo-1@localhost".to_owned(),
            "demo-2@localhost".to_owned(),
            "b@host".to_owned(),
        ];
        let node = |q: &str| Filter::parse(q).unwrap().node_in(&nodes);
        assert_eq!(node("node=b").unwrap(), Some("b@host"));
        assert_eq!(node("node=demo-2").unwrap(), Some("demo-2@localhost"));
        assert_eq!(
            node("node=demo-2@localhost").unwrap(),
            Some("demo-2@localhost")
        );
        assert!(node("node=demo").is_err(), "ambiguous");
        assert!(node("node=zzz").is_err(), "unknown");
        assert_eq!(node("mq>1").unwrap(), None);
    }
}

/// Why [`pick_node`] found no node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoNode {
    /// No node has that name or starts with it.
    None,
    /// Several nodes start with it.
    Several,
}

/// The one node of `nodes` that `want` names: its full name (`demo-2@host`),
/// its short name (`demo-2`), or the start of exactly one node's name.
///
/// # Errors
/// When it names none, or several.
pub(crate) fn pick_node<'a>(nodes: &'a [String], want: &str) -> Result<&'a str, NoNode> {
    if let Some(exact) = nodes
        .iter()
        .find(|n| *n == want || n.split('@').next() == Some(want))
    {
        return Ok(exact);
    }
    let matching: Vec<&String> = nodes.iter().filter(|n| n.starts_with(want)).collect();
    match matching.as_slice() {
        [one] => Ok(one.as_str()),
        [] => Err(NoNode::None),
        _ => Err(NoNode::Several),
    }
}
