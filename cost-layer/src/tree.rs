//! The cost tree of a session: each span with its subtotal, so a person sees where the money
//! went. Opt in with [`CostLayerBuilder::cost_tree`](crate::CostLayerBuilder::cost_tree).
//!
//! Siblings with the same name, scope and label are merged into one line with a count
//! (`call ×12`), so a session of a million calls prints as many lines as it has distinct span
//! names; past 63 distinct children of one span, the rest share one
//! [`CostTreeNode::OTHER_SPANS`] line.

use std::fmt;

use crate::totals::{Scope, Totals};

/// One node of a cost tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostTreeNode {
    /// The span name.
    pub name: &'static str,
    /// Its scope.
    pub scope: Scope,
    /// A label: the session id or agent name the span set, or a call's model, if any. The
    /// drawing leaves it out where it is the span's name (an `#[agent]` named after its
    /// function).
    pub label: Option<String>,
    /// How many sibling spans were merged into this node.
    pub count: u64,
    /// Totals of the node's subtree (all merged spans).
    pub totals: Totals,
    /// Children, in order of first close.
    pub children: Vec<CostTreeNode>,
}

/// Nodes kept per parent: the first `MAX_CHILDREN - 1` distinct children, then one
/// [`CostTreeNode::OTHER_SPANS`] node holding every further one (their count, totals and
/// children).
const MAX_CHILDREN: usize = 64;

impl CostTreeNode {
    /// The name of the node holding a parent's children past its first 63 distinct ones
    /// (scope [`Scope::Span`], no label): a session's drawing stays bounded and its totals
    /// whole.
    pub const OTHER_SPANS: &'static str = "…";

    /// Adds a closed child, merging it into a sibling of the same name, scope and label. Past
    /// `MAX_CHILDREN - 1` distinct children, a new one goes into the last node,
    /// [`Self::OTHER_SPANS`]: every child drawn by name is that child alone.
    pub(crate) fn push_child(children: &mut Vec<CostTreeNode>, child: CostTreeNode) {
        if let Some(sibling) = children
            .iter_mut()
            .find(|c| c.name == child.name && c.scope == child.scope && c.label == child.label)
        {
            sibling.merge(child);
        } else if children.len() < MAX_CHILDREN - 1 {
            children.push(child);
        } else {
            if children.len() < MAX_CHILDREN {
                children.push(CostTreeNode::other_spans());
            }
            if let Some(other) = children.last_mut() {
                other.merge(child);
            }
        }
    }

    /// An empty [`CostTreeNode::OTHER_SPANS`] node.
    fn other_spans() -> CostTreeNode {
        CostTreeNode {
            name: CostTreeNode::OTHER_SPANS,
            scope: Scope::Span,
            label: None,
            count: 0,
            totals: Totals::default(),
            children: Vec::new(),
        }
    }

    fn merge(&mut self, other: CostTreeNode) {
        self.count += other.count;
        self.totals.add(&other.totals);
        for grandchild in other.children {
            CostTreeNode::push_child(&mut self.children, grandchild);
        }
    }

    fn render(
        &self,
        f: &mut fmt::Formatter<'_>,
        prefix: &str,
        last: bool,
        root: bool,
    ) -> fmt::Result {
        let (branch, extension) = match (root, last) {
            (true, _) => ("", ""),
            (false, true) => ("└─ ", "   "),
            (false, false) => ("├─ ", "│  "),
        };
        write!(f, "{prefix}{branch}{} {}", self.scope, self.name)?;
        // A label the name already says (an agent named after its function) is not repeated.
        if let Some(label) = self.label.as_deref().filter(|label| *label != self.name) {
            write!(f, " [{label}]")?;
        }
        if self.count > 1 {
            write!(f, " ×{}", self.count)?;
        }
        writeln!(f, "  {}", self.totals)?;
        let child_prefix = format!("{prefix}{extension}");
        for (i, child) in self.children.iter().enumerate() {
            child.render(f, &child_prefix, i + 1 == self.children.len(), false)?;
        }
        Ok(())
    }
}

/// The cost tree of one closed session, given to the callback set with
/// [`CostLayerBuilder::cost_tree`](crate::CostLayerBuilder::cost_tree). `Display` draws it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostTree {
    /// The session's node.
    pub root: CostTreeNode,
}

impl fmt::Display for CostTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.render(f, "", true, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(label: &str, calls: u64) -> CostTreeNode {
        CostTreeNode {
            name: "agent",
            scope: Scope::Agent,
            label: Some(label.to_owned()),
            count: 1,
            totals: Totals {
                llm_calls: calls,
                ..Totals::default()
            },
            children: Vec::new(),
        }
    }

    #[test]
    fn children_past_the_cap_go_into_one_node_and_the_named_ones_stay_their_own() {
        let mut children = Vec::new();
        // 70 distinct agents, agent `aN` with N + 1 calls, and `a0` twice.
        for n in 0..70 {
            CostTreeNode::push_child(&mut children, agent(&format!("a{n}"), n + 1));
        }
        CostTreeNode::push_child(&mut children, agent("a0", 1));
        assert_eq!(children.len(), MAX_CHILDREN);
        let (named, other) = children.split_at(MAX_CHILDREN - 1);
        for (n, node) in (0u64..).zip(named) {
            assert_eq!(node.label.as_deref(), Some(format!("a{n}").as_str()));
            let (count, calls) = if n == 0 { (2, 2) } else { (1, n + 1) };
            assert_eq!((node.count, node.totals.llm_calls), (count, calls), "a{n}");
        }
        let other = &other[0];
        assert_eq!(
            (other.name, other.scope, other.label.as_deref()),
            (CostTreeNode::OTHER_SPANS, Scope::Span, None)
        );
        // a63 to a69: 7 agents, 64 + 65 + … + 70 calls.
        assert_eq!(other.count, 7);
        assert_eq!(other.totals.llm_calls, (64..=70).sum::<u64>());
    }
}
