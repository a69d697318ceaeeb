/** The part of jsdom the Mermaid parser helper uses (jsdom ships no types; @types/jsdom would pull in more). */
declare module 'jsdom' {
  export class JSDOM {
    constructor(html?: string);
    readonly window: Window & typeof globalThis;
  }
}
