// Signs in with Amplify v6's defaults (USER_SRP_AUTH, then the
// PASSWORD_VERIFIER challenge), from the console's node_modules.
// Usage: node amplify-signin.cjs <console dir> <endpoint> <pool id> <client id> <username> <password>
// Prints {"signedIn": …} or {"error": name}.
const path = require("node:path");
const { createRequire } = require("node:module");

const [dir, endpoint, userPoolId, userPoolClientId, username, password] = process.argv.slice(2);
const load = createRequire(path.join(dir, "package.json"));
const { Amplify } = load("aws-amplify");
const { signIn } = load("aws-amplify/auth");

Amplify.configure({ Auth: { Cognito: { userPoolId, userPoolClientId, userPoolEndpoint: endpoint } } });
signIn({ username, password }).then(
  (out) => console.log(JSON.stringify({ signedIn: out.isSignedIn, step: out.nextStep.signInStep })),
  (err) => console.log(JSON.stringify({ error: err.name })),
);
