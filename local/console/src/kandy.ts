// What a frontend of kandy-provisioner needs: Amplify pointed at the
// user pool, and a typed client of the HTTP API (api.d.ts is generated
// from api/openapi.yaml by openapi-typescript) that sends the signed-in
// user's access token. Copy this file and api.d.ts into your app.
import { Amplify } from "aws-amplify";
import { fetchAuthSession } from "aws-amplify/auth";
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./api";

// Config is what /console/config.json of `make run` holds, or a
// deployed stack's outputs: UserPoolId, UserPoolClientId, ApiUrl.
export interface Config {
  userPoolId: string;
  userPoolClientId: string;
  // The local pool's address; a deployed pool needs none.
  userPoolEndpoint?: string;
  apiUrl: string;
}

export function configure(c: Config): void {
  Amplify.configure({
    Auth: {
      Cognito: {
        userPoolId: c.userPoolId,
        userPoolClientId: c.userPoolClientId,
        ...(c.userPoolEndpoint ? { userPoolEndpoint: c.userPoolEndpoint } : {}),
      },
    },
  });
}

// The API wants an access token: every route needs its
// aws.cognito.signin.user.admin scope, which an ID token lacks.
const accessToken: Middleware = {
  async onRequest({ request }) {
    const token = (await fetchAuthSession()).tokens?.accessToken?.toString();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};

export type KandyClient = ReturnType<typeof kandyClient>;

export function kandyClient(apiUrl: string) {
  const client = createClient<paths>({ baseUrl: apiUrl.replace(/\/$/, "") });
  client.use(accessToken);
  return client;
}
