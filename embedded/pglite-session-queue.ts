import type { PGlite } from '@electric-sql/pglite';

/**
 * The order in which the PGlite socket server feeds its connections' protocol messages to
 * PGlite's one session, replacing pglite-socket's own queue (electric-sql/pglite#1046, open).
 * That queue keeps a connection's messages together only inside a SQL transaction, so two `pg`
 * clients sending Parse/Bind/Execute/Sync at once had their messages interleaved: one Parse
 * replaced the other's unnamed statement, and its Bind failed ("bind message supplies 3
 * parameters, but prepared statement "" requires 2") or, worse, ran the other's query. And a
 * throw inside its loop left it marked busy, so every later query waited forever.
 *
 * Here the session belongs to one connection from its first extended-protocol message until its
 * Sync (or a simple Query completes), and for as long as it holds a transaction open; the other
 * connections' messages wait in arrival order. A failed message rejects that message only.
 */

/** Frontend messages of an extended-protocol batch: Parse, Bind, Describe, Execute, Close, Flush. */
const EXTENDED = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]);
/** Sync ends a batch; a simple Query is a whole exchange. */
const SYNC = 0x53;
const QUERY = 0x51;

interface Queued {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (error: unknown) => void;
}

/** The interface pglite-socket's connection handlers call on the server's `queryQueue`. */
export class SessionQueue {
  private queue: Queued[] = [];
  private processing = false;
  /** The connection mid-batch, which keeps the session until its Sync. */
  private batchOwner: number | undefined;
  /** The connection whose message ran last: it owns an open transaction, if there is one. */
  private lastHandlerId: number | undefined;

  constructor(private readonly db: PGlite) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message, onData, resolve, reject });
      void this.process();
    });
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  /** A connection went away: its queued messages fail, and a batch it left open no longer holds the session. */
  clearQueueForHandler(handlerId: number): void {
    this.queue = this.queue.filter((item) => {
      if (item.handlerId !== handlerId) return true;
      item.reject(new Error('Handler disconnected'));
      return false;
    });
    if (this.batchOwner === handlerId) this.batchOwner = undefined;
    void this.process();
  }

  /** A connection that went away inside a transaction: roll it back, so the others get the session. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.db.isInTransaction() && this.lastHandlerId === handlerId) {
      await this.db.exec('ROLLBACK');
      this.lastHandlerId = undefined;
    }
    if (this.batchOwner === handlerId) this.batchOwner = undefined;
    void this.process();
  }

  /** The next message the session may run: the holder's, when a connection holds it, else the oldest. */
  private next(): Queued | undefined {
    const holder = this.batchOwner ?? (this.db.isInTransaction() ? this.lastHandlerId : undefined);
    if (holder === undefined) return this.queue.shift();
    const index = this.queue.findIndex((item) => item.handlerId === holder);
    // The holder's next message has not arrived yet: everyone waits; its enqueue resumes the loop.
    return index === -1 ? undefined : this.queue.splice(index, 1)[0];
  }

  private async process(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      for (let item = this.next(); item; item = this.next()) {
        const current = item;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(current.message, {
              onRawData: (data) => {
                bytes += data.length;
                current.onData(data);
              },
            }),
          );
          current.resolve(bytes);
        } catch (error) {
          current.reject(error);
        }
        this.lastHandlerId = current.handlerId;
        const type = current.message[0]!;
        if (EXTENDED.has(type)) this.batchOwner = current.handlerId;
        else if (type === SYNC || type === QUERY) this.batchOwner = undefined;
      }
    } finally {
      this.processing = false;
    }
  }
}
