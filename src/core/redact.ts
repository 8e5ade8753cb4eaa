/**
 * An address's credentials, `scheme://user:password@host`: the password runs to the last `@`
 * before the host (`u:p@ss@host`), as a URL parser reads it.
 */
export const ADDRESS_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:]*):([^\s/?#]*)@/gi;

/**
 * A text with every address's password shown as `***`: what a terminal, a log, an error or a
 * reader of a rule sees of a broker's, a database's or a webhook's address.
 */
export function hidePasswords(text: string): string {
  return text.replace(ADDRESS_CREDENTIALS, (_all, scheme: string, user: string) => `${scheme}${user}:***@`);
}
