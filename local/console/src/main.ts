// The local console: sign up, confirm, sign in with Amplify's defaults
// (SRP), then the HTTP API through the typed client, then leave the pool.
import { confirmSignUp, deleteUser, getCurrentUser, signIn, signOut, signUp } from "aws-amplify/auth";
import { configure, kandyClient, type Config, type KandyClient } from "./kandy";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error("no #" + id);
  return el as T;
};
const field = (id: string): string => $<HTMLInputElement>(id).value.trim();
const accountButtons = ["provision", "account", "token", "delete", "leave"];

function show(label: string, result: string | number, ok: boolean, body: unknown): void {
  $("status").textContent = `${label} → ${result}`;
  $("status").className = "status " + (ok ? "ok" : "err");
  $("output").textContent = body === undefined || body === "" ? "(no body)" : typeof body === "string" ? body : JSON.stringify(body, null, 2);
}

// step runs an action and shows what it answered, or the error.
function step(button: string, label: () => string, action: () => Promise<void>): void {
  $(button).onclick = () => {
    action().catch((err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      show(label(), "error", false, { name: e.name, message: e.message });
    });
  };
}

function signedIn(name: string, yes: boolean): void {
  $("who").textContent = yes ? `Signed in as ${name}.` : "Not signed in.";
  for (const id of accountButtons) $<HTMLButtonElement>(id).disabled = !yes;
}

async function logIn(label: string): Promise<void> {
  const username = field("username");
  // Amplify's default flow: USER_SRP_AUTH, the password never sent.
  const out = await signIn({ username, password: $<HTMLInputElement>("password").value });
  if (!out.isSignedIn) {
    show(label, "error", false, { name: "NotSignedIn", message: "next step " + out.nextStep.signInStep });
    return;
  }
  signedIn((await getCurrentUser()).signInDetails?.loginId ?? username, true);
  show(label, "signed in", true, "Signed in. Amplify keeps the tokens; the API gets the access token.");
}

function wire(api: KandyClient): void {
  const user = () => field("username");
  step("signup", () => "sign up " + user(), async () => {
    const out = await signUp({
      username: user(),
      password: $<HTMLInputElement>("password").value,
      options: { userAttributes: { email: user() } },
    });
    show("sign up " + user(), "code sent", true, { userSub: out.userId, codeDeliveryDetails: out.nextStep.signUpStep === "CONFIRM_SIGN_UP" ? out.nextStep.codeDeliveryDetails : null });
    $("code").focus();
  });
  step("confirm", () => "confirm " + user(), async () => {
    await confirmSignUp({ username: user(), confirmationCode: field("code") });
    await logIn("confirm " + user());
  });
  step("signin", () => "sign in " + user(), async () => {
    await signOut(); // a user signed in already would make signIn fail
    await logIn("sign in " + user());
  });

  const answer = (label: string, r: { data?: unknown; error?: unknown; response: Response }) =>
    show(label, r.response.status, r.response.ok, r.data ?? r.error);
  step("provision", () => "POST /users", async () => answer("POST /users", await api.POST("/users", {})));
  step("account", () => "GET /users/me", async () => answer("GET /users/me", await api.GET("/users/me")));
  step("token", () => "POST /users/me/token", async () => answer("POST /users/me/token", await api.POST("/users/me/token")));
  step("delete", () => "DELETE /users/me", async () => answer("DELETE /users/me", await api.DELETE("/users/me")));
  step("leave", () => "delete sign-in " + user(), async () => {
    await deleteUser(); // Cognito DeleteUser; Amplify then forgets the tokens
    signedIn("", false);
    show("delete sign-in " + user(), "left the pool", true,
      "The user is deleted from the pool. CloudTrail's record of it reaches the deprovision function, which deletes their Kandy account.");
  });
}

// The ids come from the API's /console/config.json at run time, so a
// page built once keeps working with any pool.
const config = (await (await fetch("/console/config.json")).json()) as Config;
configure(config);
wire(kandyClient(config.apiUrl));
document.body.dataset.ready = "true";
