/** Credentials written into URLs (`scheme://user:password@host`): never recorded, logged or printed. */
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi;

export function redactCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***:***@');
}
