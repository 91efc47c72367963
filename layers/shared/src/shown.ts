/**
 * User input as it may be printed: quoted, control characters (terminal
 * escapes among them) written as escapes, and cut to `max` characters.
 */
export function shown(text: string, max = 64): string {
  // JSON.stringify quotes, and escapes the C0 controls (\u001b, \n…); escapeControls the rest.
  const escaped = escapeControls(JSON.stringify(text));
  if (escaped.length <= max + 2) return escaped;
  return `${escaped.slice(0, max + 1)}…" (${text.length.toLocaleString('en-US')} characters)`;
}

/** Text with every control character but tab and newline (C0, DEL, C1, bidi controls) written as a `\uXXXX` escape: safe to print to a terminal. */
export function escapeControls(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it escapes
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
