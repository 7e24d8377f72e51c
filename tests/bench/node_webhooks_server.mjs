// The comparison server for bench_ingress.py: @octokit/webhooks' own Node
// middleware, as a Probot-style app would run it (verify, parse, dispatch).
// Test-only; never part of patchbay.
import http from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const [port, secret] = process.argv.slice(2);
const webhooks = new Webhooks({ secret });
webhooks.on("issue_comment.created", () => {});
const server = http.createServer(createNodeMiddleware(webhooks, { path: "/api/github/webhooks" }));
server.keepAliveTimeout = 60000;
server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
