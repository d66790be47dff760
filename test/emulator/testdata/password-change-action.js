/**
 * Post-login Action: password change through re-authentication (flow 4).
 *
 * The application sends the user to /authorize with prompt=login,
 * login_hint=<email> and a scope that includes update:password. Once the
 * user has proved the current password, this Action gets a Management API
 * token by client credentials, creates a password-change ticket for the
 * user and sends the browser to it. The ticket form sets the new password
 * and redirects to RESULT_URL. Any other login passes through untouched.
 *
 * Secrets:
 *   CLIENT_ID, CLIENT_SECRET  a machine-to-machine client with a grant for
 *                             the tenant's Management API and the scope
 *                             create:user_tickets
 *   DOMAIN                    (optional) the tenant's domain; default: the
 *                             domain the login is served on
 *   RESULT_URL                (optional) where the ticket form sends the
 *                             user after the change; default: the
 *                             application's redirect_uri
 */
exports.onExecutePostLogin = async (event, api) => {
  const scopes = (event.request.query.scope || '').split(' ');
  if (!scopes.includes('update:password')) {
    return;
  }
  const domain = event.secrets.DOMAIN || event.request.hostname;

  const tokenResponse = await fetch(`https://${domain}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      grant_type: 'client_credentials',
      client_id: event.secrets.CLIENT_ID,
      client_secret: event.secrets.CLIENT_SECRET,
      audience: `https://${domain}/api/v2/`,
      scope: 'create:user_tickets',
    }),
  });
  if (!tokenResponse.ok) {
    throw new Error(`Could not get a Management API token: ${tokenResponse.status}`);
  }
  const { access_token: accessToken } = await tokenResponse.json();

  const ticketResponse = await fetch(`https://${domain}/api/v2/tickets/password-change`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({
      user_id: event.user.user_id,
      result_url: event.secrets.RESULT_URL || event.transaction.redirect_uri,
      ttl_sec: 600,
    }),
  });
  if (!ticketResponse.ok) {
    throw new Error(`Could not create a password-change ticket: ${ticketResponse.status}`);
  }
  const { ticket } = await ticketResponse.json();
  api.redirect.sendUserTo(ticket);
};
