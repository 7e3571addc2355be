// The local channel's in-memory chat events: per-chat history (what a stream replays) and live subscribers.

export interface ChatEvent {
  /** Increasing within a chat; a client resumes a stream from the last id it saw. */
  eventId: number;
  /** The same key as the message's row in the chat's stored history (store/chat-history.ts), so a page can merge both. */
  key: string;
  role: 'user' | 'assistant';
  senderName: string;
  text: string;
  /** ms since the epoch. */
  at: number;
}

/** One open stream of one chat. Callbacks must not throw. */
export interface ChatSubscriber {
  onMessage(event: ChatEvent): void;
  onTyping(isTyping: boolean): void;
}

export interface ChatEvents {
  /** Stores the event (dropping the oldest past the cap) and pushes it to the chat's subscribers. */
  append(chatId: string, event: Omit<ChatEvent, 'eventId'>): ChatEvent;
  /** The chat's stored events with an id above afterId, oldest first; [] for a chat never written to. */
  listAfter(chatId: string, afterId: number): ChatEvent[];
  /** Returns the unsubscribe function. */
  subscribe(chatId: string, subscriber: ChatSubscriber): () => void;
  /** Typing is a state, not history: it is pushed to subscribers and remembered only for streams that open later. */
  setTyping(chatId: string, isTyping: boolean): void;
  isTyping(chatId: string): boolean;
}

export interface ChatEventsOptions {
  /** Ids continue from here. The channel seeds it with the clock so ids keep rising across host restarts. */
  firstId: number;
  maxEventsPerChat: number;
}

interface ChatState {
  events: ChatEvent[];
  lastId: number;
  isTyping: boolean;
  subscribers: Set<ChatSubscriber>;
}

export function createChatEvents(options: ChatEventsOptions): ChatEvents {
  const chats = new Map<string, ChatState>();

  function chatState(chatId: string): ChatState {
    let state = chats.get(chatId);
    if (!state) {
      state = { events: [], lastId: options.firstId, isTyping: false, subscribers: new Set() };
      chats.set(chatId, state);
    }
    return state;
  }

  return {
    append(chatId, event) {
      const state = chatState(chatId);
      state.lastId += 1;
      const stored: ChatEvent = { ...event, eventId: state.lastId };
      state.events.push(stored);
      if (state.events.length > options.maxEventsPerChat) state.events.shift();
      for (const subscriber of state.subscribers) subscriber.onMessage(stored);
      // An answer ends the "typing" state for every open tab, even if the host never calls setTyping(false).
      if (event.role === 'assistant' && state.isTyping) {
        state.isTyping = false;
        for (const subscriber of state.subscribers) subscriber.onTyping(false);
      }
      return stored;
    },

    listAfter(chatId, afterId) {
      return chats.get(chatId)?.events.filter((event) => event.eventId > afterId) ?? [];
    },

    subscribe(chatId, subscriber) {
      const state = chatState(chatId);
      state.subscribers.add(subscriber);
      return () => {
        state.subscribers.delete(subscriber);
      };
    },

    setTyping(chatId, isTyping) {
      const state = chatState(chatId);
      state.isTyping = isTyping;
      for (const subscriber of state.subscribers) subscriber.onTyping(isTyping);
    },

    isTyping(chatId) {
      return chats.get(chatId)?.isTyping ?? false;
    },
  };
}
