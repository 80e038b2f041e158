//! The WebSocket demo apps: `/ws/echo` and the `/ws/chat` room.
//!
//! The chat room is the blocking-queue lesson of James Smith's book *Build Your Own Web
//! Server From Scratch in Node.js* (build-your-own.org, 2024) in event-loop form. Each
//! member has a bounded mailbox; a broadcast appends to every mailbox and wakes the member's
//! connection, whose handler moves messages from its mailbox to the socket only while the
//! socket keeps up. A member whose mailbox is full is not waited for and does not make the
//! room grow: it is closed with 1008 ("too slow"). Nothing blocks and memory is bounded by
//! members x mailbox size.
//!
//! The room is shared by every worker thread (a `Mutex` held only to append or drain), so all
//! clients of one server see each other whichever worker accepted them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::websocket::{Message, Notifier, WebSocketHandler, WsOutput};
use crate::AppError;

/// Close code for a member that cannot keep up (policy violation, RFC 6455 7.4.1).
pub const TOO_SLOW: u16 = 1008;
/// Close code for data the room does not take (binary messages).
pub const UNSUPPORTED: u16 = 1003;

/// The bounds of one member's mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxLimits {
    pub messages: usize,
    pub bytes: usize,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits {
            messages: 256,
            bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Default)]
struct MailboxState {
    messages: VecDeque<Arc<str>>,
    bytes: usize,
    overflowed: bool,
}

#[derive(Debug)]
struct Member {
    id: u64,
    channel: String,
    mailbox: Arc<Mutex<MailboxState>>,
    notify: Notifier,
}

#[derive(Debug, Default)]
struct Members {
    next_id: u64,
    list: Vec<Member>,
}

/// A broadcast room: every text message goes to every member of the same channel (the
/// `?room=NAME` of the request; one default channel without it), the sender included.
#[derive(Debug, Default)]
pub struct ChatRoom {
    members: Mutex<Members>,
    limits: MailboxLimits,
}

/// Locks `m`, also after a thread panicked while holding it (the state stays consistent: every
/// critical section here is a few pushes and pops).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ChatRoom {
    pub fn new(limits: MailboxLimits) -> ChatRoom {
        ChatRoom {
            members: Mutex::default(),
            limits,
        }
    }

    /// How many members the room has.
    pub fn len(&self) -> usize {
        lock(&self.members).list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn join(&self, channel: &str, notify: Notifier) -> (u64, Arc<Mutex<MailboxState>>) {
        let mailbox = Arc::new(Mutex::new(MailboxState::default()));
        let mut members = lock(&self.members);
        members.next_id += 1;
        let id = members.next_id;
        members.list.push(Member {
            id,
            channel: channel.to_string(),
            mailbox: Arc::clone(&mailbox),
            notify,
        });
        (id, mailbox)
    }

    fn leave(&self, id: u64) {
        lock(&self.members).list.retain(|m| m.id != id);
    }

    /// Appends `text` to the mailbox of every member of `channel` and wakes them. A member
    /// whose mailbox would exceed its bounds is marked overflowed instead (its handler closes
    /// it).
    pub fn broadcast(&self, channel: &str, text: &str) {
        let message: Arc<str> = Arc::from(text);
        let members = lock(&self.members);
        for member in members.list.iter().filter(|m| m.channel == channel) {
            {
                let mut mailbox = lock(&member.mailbox);
                if mailbox.overflowed {
                    continue;
                }
                if mailbox.messages.len() >= self.limits.messages
                    || mailbox.bytes + message.len() > self.limits.bytes
                {
                    mailbox.overflowed = true;
                    mailbox.messages.clear();
                    mailbox.bytes = 0;
                } else {
                    mailbox.bytes += message.len();
                    mailbox.messages.push_back(Arc::clone(&message));
                }
            }
            member.notify.notify();
        }
    }
}

/// One member of a [`ChatRoom`]; leaves the room when dropped (when its connection ends).
pub struct ChatMember {
    room: Arc<ChatRoom>,
    channel: String,
    joined: Option<(u64, Arc<Mutex<MailboxState>>)>,
}

/// The longest channel name.
pub const MAX_CHANNEL: usize = 64;

impl ChatMember {
    /// A member-to-be of `channel` (cut to [`MAX_CHANNEL`] bytes at a character boundary); it
    /// joins when its session opens.
    pub fn new(room: Arc<ChatRoom>, channel: &str) -> ChatMember {
        let mut end = channel.len().min(MAX_CHANNEL);
        while !channel.is_char_boundary(end) {
            end -= 1;
        }
        ChatMember {
            room,
            channel: channel.get(..end).unwrap_or("").to_string(),
            joined: None,
        }
    }
}

impl Drop for ChatMember {
    fn drop(&mut self) {
        if let Some((id, _)) = self.joined.take() {
            self.room.leave(id);
        }
    }
}

impl WebSocketHandler for ChatMember {
    fn open(&mut self, notify: Notifier, _ws: &mut WsOutput<'_>) -> Result<(), AppError> {
        self.joined = Some(self.room.join(&self.channel, notify));
        Ok(())
    }

    fn message(&mut self, msg: Message<'_>, ws: &mut WsOutput<'_>) -> Result<(), AppError> {
        match msg {
            Message::Text(text) => self.room.broadcast(&self.channel, text),
            Message::Binary(_) => ws.close(UNSUPPORTED, "text messages only"),
        }
        Ok(())
    }

    fn poll(&mut self, ws: &mut WsOutput<'_>) -> Result<bool, AppError> {
        let Some((_, mailbox)) = self.joined.as_ref() else {
            return Ok(false);
        };
        if ws.is_closing() {
            return Ok(false);
        }
        let mut mailbox = lock(mailbox);
        if mailbox.overflowed {
            drop(mailbox);
            ws.close(TOO_SLOW, "too slow");
            return Ok(false);
        }
        while ws.room() > 0 {
            let Some(message) = mailbox.messages.pop_front() else {
                break;
            };
            mailbox.bytes -= message.len();
            ws.send_text(&message)?;
        }
        Ok(!mailbox.messages.is_empty())
    }
}

/// `/ws/echo`: every message goes back as it came (text as text, binary as binary). The loop
/// stops reading the peer while the output is behind, so an echo needs no queue of its own.
/// Messages that arrive after the server's Close (a shutdown's 1001) are not answered: no
/// data frame may follow a Close (RFC 6455 section 5.5.1).
#[derive(Debug, Default)]
pub struct Echo;

impl WebSocketHandler for Echo {
    fn message(&mut self, msg: Message<'_>, ws: &mut WsOutput<'_>) -> Result<(), AppError> {
        if ws.is_closing() {
            return Ok(());
        }
        match msg {
            Message::Text(text) => ws.send_text(text),
            Message::Binary(data) => ws.send_binary(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::Wake;
    use std::time::Instant;
    use weft_core::ws::{WebSocket, WsConfig};

    #[derive(Default)]
    struct Woken(Mutex<Vec<usize>>);

    impl Wake for Woken {
        fn wake(&self, token: usize) {
            lock(&self.0).push(token);
        }
    }

    fn session() -> WebSocket {
        WebSocket::new(WsConfig::default(), Instant::now())
    }

    fn open(member: &mut ChatMember, ws: &mut WebSocket, wake: &Arc<Woken>, token: usize) {
        let wake: Arc<dyn Wake> = Arc::clone(wake) as Arc<dyn Wake>;
        let mut out = WsOutput::new(ws.sender(), Instant::now());
        assert!(member.open(Notifier::new(wake, token), &mut out).is_ok());
    }

    fn poll(member: &mut ChatMember, ws: &mut WebSocket) -> bool {
        let mut out = WsOutput::new(ws.sender(), Instant::now());
        member.poll(&mut out).unwrap_or(false)
    }

    #[test]
    fn broadcast_reaches_every_member_of_the_channel_only() {
        let room = Arc::new(ChatRoom::default());
        let wake = Arc::new(Woken::default());
        let (mut a, mut b, mut c) = (
            ChatMember::new(Arc::clone(&room), "x"),
            ChatMember::new(Arc::clone(&room), "x"),
            ChatMember::new(Arc::clone(&room), "other"),
        );
        let (mut wa, mut wb, mut wc) = (session(), session(), session());
        open(&mut a, &mut wa, &wake, 1);
        open(&mut b, &mut wb, &wake, 2);
        open(&mut c, &mut wc, &wake, 3);
        assert_eq!(room.len(), 3);
        {
            let mut out = WsOutput::new(wa.sender(), Instant::now());
            assert!(a.message(Message::Text("hi"), &mut out).is_ok());
        }
        assert_eq!(*lock(&wake.0), vec![1, 2]);
        assert!(!poll(&mut a, &mut wa));
        assert!(!poll(&mut b, &mut wb));
        assert!(!poll(&mut c, &mut wc));
        assert_eq!(wa.transmit(), b"\x81\x02hi");
        assert_eq!(wb.transmit(), b"\x81\x02hi");
        assert_eq!(wc.transmit(), b"");
        drop(a);
        assert_eq!(room.len(), 2);
    }

    #[test]
    fn a_member_that_cannot_keep_up_is_closed_with_1008() {
        let room = Arc::new(ChatRoom::new(MailboxLimits {
            messages: 2,
            bytes: 1 << 20,
        }));
        let wake = Arc::new(Woken::default());
        let mut slow = ChatMember::new(Arc::clone(&room), "");
        let mut ws = session();
        open(&mut slow, &mut ws, &wake, 7);
        for text in ["1", "2", "3", "4"] {
            room.broadcast("", text);
        }
        assert!(!poll(&mut slow, &mut ws));
        assert!(ws.is_closing());
        assert_eq!(ws.transmit().get(..4), Some(&b"\x88\x0a\x03\xf0"[..]));
    }

    #[test]
    fn the_mailbox_is_bounded_in_bytes_too() {
        let room = Arc::new(ChatRoom::new(MailboxLimits {
            messages: 100,
            bytes: 10,
        }));
        let wake = Arc::new(Woken::default());
        let mut member = ChatMember::new(Arc::clone(&room), "");
        let mut ws = session();
        open(&mut member, &mut ws, &wake, 0);
        room.broadcast("", "123456");
        room.broadcast("", "123456");
        assert!(!poll(&mut member, &mut ws));
        assert!(ws.is_closing());
    }

    #[test]
    fn the_echo_answers_until_the_server_closes_then_stays_silent() {
        let mut ws = session();
        let mut echo = Echo;
        {
            let mut out = WsOutput::new(ws.sender(), Instant::now());
            assert!(echo.message(Message::Text("a"), &mut out).is_ok());
            out.close(1001, "server shutting down");
            // A message still in flight from the peer: not an error, and nothing is sent.
            assert!(echo.message(Message::Binary(b"late"), &mut out).is_ok());
        }
        let out = ws.transmit();
        assert_eq!(out.get(..3), Some(&b"\x81\x01a"[..]));
        assert_eq!(
            out.get(3),
            Some(&0x88),
            "the Close follows the echo, nothing after"
        );
        assert_eq!(out.len(), 3 + 2 + 2 + "server shutting down".len());
    }

    #[test]
    fn channel_names_are_cut_at_a_character_boundary() {
        let room = Arc::new(ChatRoom::default());
        let name = "é".repeat(40);
        let member = ChatMember::new(room, &name);
        assert_eq!(member.channel.len(), 64);
    }
}
