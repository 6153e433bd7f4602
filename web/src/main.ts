// The dashboard shell: token login, hash routes (#/overview, #/map, #/alerts, #/car/ID, #/models, #/dlq) and the
// shared live stream.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { el, get, live, setToken, token } from "./api";
import { alertsPage } from "./alerts";
import { carPage } from "./car";
import { dlqPage } from "./dlq";
import { mapPage } from "./map";
import { modelsPage } from "./models";
import { overviewPage } from "./overview";
import type { Page } from "./page";

const app = document.getElementById("app")!;
let current: Page | null = null;
let role = "";

// `up` prints the dashboard URL with its generated token as #token=...; keep it and clean the address bar.
const fromUrl = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (fromUrl) {
  setToken(decodeURIComponent(fromUrl[1]));
  history.replaceState(null, "", `${location.pathname}#/overview`);
}

function loginPage(message = ""): Page {
  const input = el("input", {
    id: "token",
    type: "password",
    placeholder: "API token",
    autocomplete: "current-password",
  });
  const msg = el("p", { class: "error" }, message);
  const form = el(
    "form",
    { class: "login" },
    el("h1", {}, "fleettwin"),
    el("p", {}, "Log in with an API token (viewer, operator or admin)."),
    input,
    el("button", { type: "submit" }, "log in"),
    msg,
  );
  form.onsubmit = async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    if (await checkToken()) route();
    else msg.textContent = "That token is not valid.";
  };
  app.replaceChildren(form);
  document.body.classList.add("logged-out");
  input.focus();
  return { dispose() {} };
}

async function checkToken(): Promise<boolean> {
  if (!token()) return false;
  try {
    role = (await get("/api/v1/whoami", {})).role;
    document.getElementById("who")!.textContent = role;
    document.body.classList.remove("logged-out");
    live.connect();
    return true;
  } catch {
    setToken("");
    return false;
  }
}

function route(): void {
  current?.dispose();
  app.replaceChildren();
  if (!role) {
    current = loginPage();
    return;
  }
  const [, name = "overview", arg = ""] = location.hash.split("/");
  document
    .querySelectorAll("nav a")
    .forEach((a) => a.classList.toggle("active", (a as HTMLElement).dataset.nav === name));
  switch (name) {
    case "map":
      current = mapPage(app);
      break;
    case "alerts":
      current = alertsPage(app, role);
      break;
    case "models":
      current = modelsPage(app);
      break;
    case "dlq":
      current = dlqPage(app);
      break;
    case "car":
      current = carPage(app, decodeURIComponent(arg), role);
      break;
    default:
      current = overviewPage(app);
  }
}

document.getElementById("logout")!.onclick = () => {
  setToken("");
  role = "";
  live.close();
  route();
};
window.addEventListener("fleettwin:unauthorized", () => {
  if (!role) return;
  role = "";
  live.close();
  current?.dispose();
  current = loginPage("The token was refused; log in again.");
});
window.addEventListener("hashchange", route);
void checkToken().then(route);
