// Where the authgraph API is. serve.py replaces this file with its --api value; when you
// serve this folder with another static server, edit it here.
export const API_URL = "http://localhost:8000/graphql";
