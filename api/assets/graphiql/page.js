// Starts GraphiQL against this server. Queries and mutations go over HTTP to /graphql;
// subscriptions over a WebSocket to /graphql on the same host with graphql-transport-ws, through
// the graphql-ws client that GraphiQL's bundle carries (createFetcher builds one from
// subscriptionUrl, sending the Headers pane as the connection_init payload, so a pasted
// {"Authorization": "Bearer ..."} works for both). A file rather than an inline script, so the
// page's CSP can allow scripts from 'self' only.
(function () {
  'use strict';
  var scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: scheme + '//' + window.location.host + '/graphql',
  });
  var defaultQuery = [
    '# Scoreline: live sports scores over GraphQL.',
    '# Run this with Ctrl-Enter. Subscriptions stay open:',
    '#   subscription { matchesUpdated { id version } }',
    '# Mutations need a token in Headers (below):',
    '#   {"Authorization": "Bearer <token>"}',
    '',
    '{',
    '  liveMatches {',
    '    id',
    '    sport',
    '    status',
    '    homeTeam { name }',
    '    awayTeam { name }',
    '    score { home away }',
    '  }',
    '}',
    '',
  ].join('\n');
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: defaultQuery }),
  );
})();
