//! The one keymap: every binding with its action and its help text. Key
//! dispatch and the help screen (and the key line at the bottom) are both
//! read from [`KEYMAP`], so they cannot drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Quit,
    NextView,
    PrevView,
    View(u8),
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Enter,
    Back,
    SortNext,
    SortReverse,
    Filter,
    NodeNext,
    ToggleSystem,
    Pause,
    LevelNext,
    CopyTrace,
    PeekMailbox,
    Related,
    Help,
}

/// A key: its code and whether Ctrl is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) code: KeyCode,
    pub(crate) ctrl: bool,
}

const fn key(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}

/// One binding: keys, action, the label shown for the keys, and help.
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) keys: &'static [Key],
    pub(crate) action: Action,
    pub(crate) label: &'static str,
    pub(crate) help: &'static str,
    /// Shown in the key line at the bottom of the screen.
    pub(crate) short: Option<&'static str>,
}

/// Every binding, in help order.
pub(crate) const KEYMAP: &[Binding] = &[
    Binding {
        keys: &[key(KeyCode::Down), ch('j')],
        action: Action::Down,
        label: "↓ j",
        help: "move down",
        short: None,
    },
    Binding {
        keys: &[key(KeyCode::Up), ch('k')],
        action: Action::Up,
        label: "↑ k",
        help: "move up",
        short: Some("j/k move"),
    },
    Binding {
        keys: &[key(KeyCode::Home), ch('g')],
        action: Action::Top,
        label: "g Home",
        help: "first row",
        short: None,
    },
    Binding {
        keys: &[key(KeyCode::End), ch('G')],
        action: Action::Bottom,
        label: "G End",
        help: "last row",
        short: None,
    },
    Binding {
        keys: &[key(KeyCode::PageDown)],
        action: Action::PageDown,
        label: "PgDn",
        help: "next page",
        short: None,
    },
    Binding {
        keys: &[key(KeyCode::PageUp)],
        action: Action::PageUp,
        label: "PgUp",
        help: "previous page",
        short: None,
    },
    Binding {
        keys: &[key(KeyCode::Tab)],
        action: Action::NextView,
        label: "Tab",
        help: "next view",
        short: None,
    },
    Binding {
        keys: &[key(KeyCode::BackTab)],
        action: Action::PrevView,
        label: "S-Tab",
        help: "previous view",
        short: None,
    },
    Binding {
        keys: &[ch('1')],
        action: Action::View(1),
        label: "1",
        help: "nodes",
        short: None,
    },
    Binding {
        keys: &[ch('2')],
        action: Action::View(2),
        label: "2",
        help: "processes",
        short: None,
    },
    Binding {
        keys: &[ch('3')],
        action: Action::View(3),
        label: "3",
        help: "supervision tree",
        short: None,
    },
    Binding {
        keys: &[ch('4')],
        action: Action::View(4),
        label: "4",
        help: "metrics",
        short: None,
    },
    Binding {
        keys: &[ch('5')],
        action: Action::View(5),
        label: "5",
        help: "logs",
        short: None,
    },
    Binding {
        keys: &[ch('6')],
        action: Action::View(6),
        label: "6",
        help: "warnings",
        short: None,
    },
    Binding {
        keys: &[ch('7')],
        action: Action::View(7),
        label: "7",
        help: "registry: PubSub and Presence topics, names, groups",
        short: None,
    },
    Binding {
        keys: &[key(KeyCode::Enter)],
        action: Action::Enter,
        label: "Enter",
        help: "open: a process's detail, a warning's process or node, a log record in full; expand or collapse a tree node",
        short: Some("⏎ detail"),
    },
    Binding {
        keys: &[key(KeyCode::Esc)],
        action: Action::Back,
        label: "Esc",
        help: "back; clear the filter",
        short: None,
    },
    Binding {
        keys: &[ch('s')],
        action: Action::SortNext,
        label: "s",
        help: "next sort column",
        short: Some("s sort"),
    },
    Binding {
        keys: &[ch('S')],
        action: Action::SortReverse,
        label: "S",
        help: "reverse the sort",
        short: None,
    },
    Binding {
        keys: &[ch('/')],
        action: Action::Filter,
        label: "/",
        help: "filter: mq>1000 node=b name~chat growth>5 sys",
        short: Some("/ filter"),
    },
    Binding {
        keys: &[ch('n')],
        action: Action::NodeNext,
        label: "n",
        help: "next node (processes, tree, logs)",
        short: Some("n node"),
    },
    Binding {
        keys: &[ch('t')],
        action: Action::ToggleSystem,
        label: "t",
        help: "show or hide system processes",
        short: Some("t sys"),
    },
    Binding {
        keys: &[ch('l')],
        action: Action::LevelNext,
        label: "l",
        help: "log level (logs)",
        short: None,
    },
    Binding {
        keys: &[ch('p'), ch(' ')],
        action: Action::Pause,
        label: "p Space",
        help: "pause or resume updates",
        short: Some("p pause"),
    },
    Binding {
        keys: &[ch('y')],
        action: Action::CopyTrace,
        label: "y",
        help: "copy the Jaeger URL of the selected trace (process detail)",
        short: None,
    },
    Binding {
        keys: &[ch('r')],
        action: Action::Related,
        label: "r",
        help: "pick the next process the detail names (supervisor, link, monitor, sender); \
               Enter opens its detail",
        short: None,
    },
    Binding {
        keys: &[ch('m')],
        action: Action::PeekMailbox,
        label: "m",
        help: "read the first 20 queued messages (process detail); a BEAM node copies the \
               queue to read it",
        short: None,
    },
    Binding {
        keys: &[ch('?')],
        action: Action::Help,
        label: "?",
        help: "this help",
        short: Some("? help"),
    },
    Binding {
        keys: &[
            ch('q'),
            Key {
                code: KeyCode::Char('c'),
                ctrl: true,
            },
        ],
        action: Action::Quit,
        label: "q Ctrl-C",
        help: "quit",
        short: Some("q quit"),
    },
];

/// The action bound to `event`, if any.
pub(crate) fn action_for(event: &KeyEvent) -> Option<Action> {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    KEYMAP
        .iter()
        .find(|b| {
            b.keys
                .iter()
                .any(|k| k.code == event.code && k.ctrl == ctrl)
        })
        .map(|b| b.action)
}

/// The key line: the short forms, in table order.
pub(crate) fn key_line() -> String {
    KEYMAP
        .iter()
        .filter_map(|b| b.short)
        .collect::<Vec<_>>()
        .join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_action() {
        let mut seen = Vec::new();
        for b in KEYMAP {
            for k in b.keys {
                assert!(!seen.contains(k), "{k:?} is bound twice");
                seen.push(*k);
            }
        }
    }

    #[test]
    fn the_readme_lists_every_binding() {
        let readme = include_str!("../../README.md");
        for b in KEYMAP {
            let row = format!("| `{}` | {} |", b.label, b.help);
            assert!(readme.contains(&row), "README.md lacks the row {row}");
        }
    }

    #[test]
    fn dispatch_reads_the_table() {
        let ev = |code, m| KeyEvent::new(code, m);
        assert_eq!(
            action_for(&ev(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            action_for(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            action_for(&ev(KeyCode::Char('c'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            action_for(&ev(KeyCode::Char('3'), KeyModifiers::NONE)),
            Some(Action::View(3))
        );
        assert!(key_line().starts_with("j/k move"));
    }
}
