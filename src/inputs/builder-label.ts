/** How a builder is named everywhere the action speaks of one: logs, errors, the report and the summary. */

/** host:port, with an IPv6 address in brackets. */
export function hostPort(builder: { host: string; port: number }): string {
  return builder.host.includes(':') ? `[${builder.host}]:${builder.port}` : `${builder.host}:${builder.port}`
}

/** How users know a builder: user@host:port. */
export function label(builder: { user: string; host: string; port: number }): string {
  return `${builder.user}@${hostPort(builder)}`
}
