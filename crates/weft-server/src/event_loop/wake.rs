//! Wake-ups from other threads (or from handlers of this loop): a WebSocket handler's
//! `Notifier` appends its connection's token here, and the first token interrupts the loop's
//! wait.

use std::sync::Mutex;

use weft_app::Wake;

use crate::backend::{Token, WakeFn};

/// The connections other threads (or handlers of this loop) asked to wake, and how to
/// interrupt this loop's wait when the first one arrives.
pub(super) struct WakeList {
    pub(super) tokens: Mutex<Vec<Token>>,
    pub(super) interrupt: Option<WakeFn>,
}

impl Wake for WakeList {
    fn wake(&self, token: usize) {
        let first = {
            let mut tokens = self.tokens();
            tokens.push(token);
            tokens.len() == 1
        };
        if first {
            if let Some(interrupt) = self.interrupt.as_ref() {
                interrupt();
            }
        }
    }
}

impl WakeList {
    /// The list, also after a thread panicked holding it (pushing and draining tokens leaves
    /// it consistent at every step).
    fn tokens(&self) -> std::sync::MutexGuard<'_, Vec<Token>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn take(&self, into: &mut Vec<Token>) {
        into.append(&mut self.tokens());
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tokens().is_empty()
    }
}
