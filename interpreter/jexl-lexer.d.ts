/** The part of Jexl's lexer (jexl 2.3, untyped) that interpreter/expressions.ts corrects. */
declare module 'jexl/dist/Lexer.js' {
  export interface JexlToken {
    type: string;
    value: unknown;
    raw: string;
  }
  export default class Lexer {
    /** Whether a "-" read after `tokens` starts a negative number rather than subtracting. */
    _isNegative(tokens: JexlToken[]): boolean;
  }
}
