//! The cost tree of a session: each span with its subtotal, so a person sees where the money
//! went. Opt in with [`CostLayerBuilder::cost_tree`](crate::CostLayerBuilder::cost_tree).
//!
//! Siblings with the same name and scope are merged into one line with a count (`call ×12`),
//! so a session of a million calls prints as many lines as it has distinct span names.

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

/// Sibling nodes kept per parent before further distinct names are merged into one `…` node.
const MAX_DISTINCT_CHILDREN: usize = 64;

impl CostTreeNode {
    /// Adds a closed child, merging it into a sibling of the same name and scope.
    pub(crate) fn push_child(children: &mut Vec<CostTreeNode>, child: CostTreeNode) {
        if let Some(sibling) = children
            .iter_mut()
            .find(|c| c.name == child.name && c.scope == child.scope && c.label == child.label)
        {
            sibling.merge(child);
        } else if children.len() < MAX_DISTINCT_CHILDREN {
            children.push(child);
        } else if let Some(last) = children.last_mut() {
            last.name = "…";
            last.label = None;
            last.merge(child);
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
