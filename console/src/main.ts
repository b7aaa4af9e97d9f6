// The console's entry point: the app shell mounts here (src/pages/*).
const app = document.getElementById("app");
if (app !== null)
	app.textContent = "porthole console";
