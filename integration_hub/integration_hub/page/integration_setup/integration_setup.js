// New Integration: connector → test connection → template → field rows → preview → enable, one step at a time.

frappe.pages["integration-setup"].on_page_load = function (wrapper) {
	const page = frappe.ui.make_app_page({ parent: wrapper, title: __("New Integration"), single_column: true });
	wrapper.integration_setup = new IntegrationSetup(page);
};

frappe.pages["integration-setup"].on_page_show = function (wrapper) {
	if (wrapper.integration_setup && wrapper.integration_setup.finished) {
		wrapper.integration_setup.start();
	}
};

class IntegrationSetup {
	constructor(page) {
		this.page = page;
		this.steps = [
			this.connector_step(),
			this.test_step(),
			this.template_step(),
			this.rows_step(),
			this.preview_step(),
			this.enable_step(),
		];
		this.start();
	}

	start() {
		this.state = {};
		this.finished = false;
		this.show(0);
	}

	show(index) {
		this.index = index;
		const step = this.steps[index];
		const $body = $(this.page.main).empty();
		$(`<div class="ih-setup-progress text-muted small mb-2"></div>`)
			.text(__("Step {0} of {1}", [index + 1, this.steps.length]))
			.appendTo($body);
		$(`<h4 class="ih-setup-title"></h4>`).text(step.title).appendTo($body);
		$(`<p class="text-muted"></p>`).text(step.intro).appendTo($body);
		const $fields = $(`<div class="ih-setup-fields"></div>`).appendTo($body);
		this.$result = $(`<div class="ih-setup-result mb-3"></div>`).appendTo($body);
		this.fields = new frappe.ui.FieldGroup({ fields: step.fields(this.state), body: $fields[0] });
		this.fields.make();
		const $buttons = $(`<div class="ih-setup-buttons"></div>`).appendTo($body);
		if (index > 0 && step.back !== false) {
			$(`<button class="btn btn-default btn-sm mr-2 ih-step-back"></button>`)
				.text(__("Back"))
				.on("click", () => this.show(index - 1))
				.appendTo($buttons);
		}
		if (step.next) {
			$(`<button class="btn btn-primary btn-sm ih-step-next"></button>`)
				.text(step.next_label || __("Next"))
				.on("click", () => this.next())
				.appendTo($buttons);
		}
		if (step.after_render) {
			step.after_render(this);
		}
	}

	next() {
		const step = this.steps[this.index];
		const values = this.fields.get_values();
		if (!values) {
			return;
		}
		Promise.resolve(step.next(values, this))
			.then((go_on) => {
				if (go_on !== false) {
					this.show(this.index + 1);
				}
			})
			.catch(() => {
				// the server's message is already on screen (frappe.xcall shows it)
			});
	}

	message(text, color) {
		this.$result.empty();
		$(`<div class="alert ih-setup-message"></div>`)
			.addClass(color === "green" ? "alert-success" : color === "red" ? "alert-danger" : "alert-info")
			.text(text)
			.appendTo(this.$result);
	}

	connector_step() {
		const secret_for = { "API Key": "api_key", "Bearer Token": "bearer_token" };
		return {
			title: __("Connector: the outside system"),
			intro: __(
				"Pick a connector you already have, or describe the new system: its address and how it authenticates. Secrets are stored encrypted and never shown again."
			),
			fields: (state) => [
				{
					fieldname: "existing_connector",
					fieldtype: "Link",
					options: "Connector",
					label: __("Use an Existing Connector"),
					default: state.connector,
				},
				{ fieldtype: "Section Break", label: __("Or Create a New One"), depends_on: "eval:!doc.existing_connector" },
				{ fieldname: "connector_name", fieldtype: "Data", label: __("Connector Name") },
				{
					fieldname: "base_url",
					fieldtype: "Data",
					label: __("Base URL"),
					description: __("For example https://books.example.com/api"),
				},
				{
					fieldname: "health_check_path",
					fieldtype: "Data",
					label: __("Test Connection Path"),
					default: "/",
				},
				{
					fieldname: "allow_private_network",
					fieldtype: "Check",
					label: __("The system is on this machine or the private network"),
				},
				{ fieldtype: "Column Break" },
				{
					fieldname: "auth_type",
					fieldtype: "Select",
					label: __("Authentication"),
					options: ["None", "API Key", "Bearer Token", "Basic"],
					default: "None",
				},
				{
					fieldname: "api_key_name",
					fieldtype: "Data",
					label: __("API Key Header"),
					default: "X-API-Key",
					depends_on: "eval:doc.auth_type=='API Key'",
				},
				{
					fieldname: "secret",
					fieldtype: "Password",
					label: __("API Key or Token"),
					depends_on: "eval:['API Key', 'Bearer Token'].includes(doc.auth_type)",
				},
				{ fieldname: "username", fieldtype: "Data", label: __("Username"), depends_on: "eval:doc.auth_type=='Basic'" },
				{ fieldname: "password", fieldtype: "Password", label: __("Password"), depends_on: "eval:doc.auth_type=='Basic'" },
			],
			next: (values, setup) => {
				if (values.existing_connector) {
					setup.state.connector = values.existing_connector;
					return true;
				}
				if (!values.connector_name || !values.base_url) {
					frappe.msgprint(__("Give the connector a name and a Base URL, or pick an existing connector."));
					return false;
				}
				const doc = {
					doctype: "Connector",
					connector_name: values.connector_name,
					protocol: "REST",
					base_url: values.base_url,
					health_check_path: values.health_check_path || "/",
					allow_private_network: values.allow_private_network ? 1 : 0,
					auth_type: values.auth_type,
					api_key_name: values.api_key_name,
					username: values.username,
					password: values.password,
				};
				if (secret_for[values.auth_type]) {
					doc[secret_for[values.auth_type]] = values.secret;
				}
				return frappe.xcall("frappe.client.insert", { doc }).then((saved) => {
					setup.state.connector = saved.name;
				});
			},
		};
	}

	test_step() {
		return {
			title: __("Test the connection"),
			intro: __("Call the remote once and see whether it answers. Nothing is sent from your documents."),
			fields: () => [{ fieldname: "test_button", fieldtype: "Button", label: __("Test Connection") }],
			after_render: (setup) => {
				setup.fields.get_field("test_button").$input.addClass("ih-test-connection").on("click", () =>
					frappe
						.xcall("integration_hub.api.connector.test_connection", { connector: setup.state.connector })
						.then((result) => {
							setup.state.connection_ok = result.ok;
							setup.message(result.message, result.ok ? "green" : "red");
						})
				);
			},
			next: (values, setup) =>
				setup.state.connection_ok
					? true
					: new Promise((resolve) =>
							frappe.confirm(
								__("The connection has not worked yet. Go on anyway and fix it later?"),
								() => resolve(true),
								() => resolve(false)
							)
					  ),
		};
	}

	template_step() {
		return {
			title: __("Choose what to send or receive"),
			intro: __("Start from a ready template; you adjust its field rows in the next step."),
			fields: (state) => [
				{ fieldname: "template", fieldtype: "Select", label: __("Template"), reqd: 1, options: [] },
				{ fieldname: "about", fieldtype: "HTML" },
				{
					fieldname: "mapping_name",
					fieldtype: "Data",
					label: __("Mapping Name"),
					description: __("Leave empty for the template's title and the connector's name"),
				},
			],
			after_render: (setup) =>
				frappe.xcall("integration_hub.api.mapping.list_templates").then((templates) => {
					const field = setup.fields.get_field("template");
					const describe = () => {
						const chosen = templates.find((t) => t.name === field.get_value());
						setup.fields
							.get_field("about")
							.$wrapper.text(chosen ? chosen.description : "")
							.addClass("text-muted");
					};
					field.df.options = templates.map((t) => ({ value: t.name, label: t.title }));
					field.df.onchange = describe;
					field.refresh();
					field.set_value(setup.state.template || templates[0]?.name).then(describe);
				}),
			next: (values, setup) =>
				frappe
					.xcall("integration_hub.api.mapping.create_from_template", {
						template: values.template,
						connector: setup.state.connector,
						mapping_name: values.mapping_name,
						enabled: 0,
					})
					.then((name) => frappe.xcall("frappe.client.get", { doctype: "Mapping", name }))
					.then((doc) => {
						setup.state.template = values.template;
						setup.state.mapping = doc;
					}),
		};
	}

	rows_step() {
		return {
			title: __("Field rows"),
			intro: __(
				"Each row takes a value from one side and writes it to the other. Required rows stop a record that lacks the value; each wrong row gets its own message below it."
			),
			back: false,
			fields: (state) => [
				{
					fieldname: "rows",
					fieldtype: "Table",
					label: __("Field Rows"),
					cannot_add_rows: false,
					in_place_edit: true,
					data: (state.mapping.fields || []).map((row) => ({ ...row })),
					fields: [
						{ fieldname: "name", fieldtype: "Data", hidden: 1 },
						{
							fieldname: "source_type",
							fieldtype: "Select",
							label: __("Source Type"),
							options: ["Field", "Path", "Expression", "Constant"],
							in_list_view: 1,
							columns: 1,
						},
						{ fieldname: "source", fieldtype: "Data", label: __("Source"), in_list_view: 1, columns: 3 },
						{ fieldname: "target", fieldtype: "Data", label: __("Target"), in_list_view: 1, columns: 3, reqd: 1 },
						{ fieldname: "transform", fieldtype: "Data", label: __("Transform"), in_list_view: 1, columns: 1 },
						{ fieldname: "argument", fieldtype: "Data", label: __("Argument"), in_list_view: 1, columns: 1 },
						{ fieldname: "required", fieldtype: "Check", label: __("Required"), in_list_view: 1, columns: 1 },
					],
				},
			],
			next: (values, setup) => {
				const keep = ["name", "source_type", "source", "target", "transform", "argument", "required", "default_value"];
				const doc = {
					...setup.state.mapping,
					fields: (values.rows || []).map((row, i) => {
						const clean = { doctype: "Mapping Field", idx: i + 1 };
						keep.forEach((key) => row[key] !== undefined && (clean[key] = row[key]));
						return clean;
					}),
				};
				return frappe.xcall("integration_hub.api.mapping.check_rows", { doc }).then((errors) => {
					const messages = Object.values(errors || {});
					if (messages.length) {
						setup.message(messages.map((m) => new DOMParser().parseFromString(m, "text/html").body.textContent).join("\n"), "red");
						return false;
					}
					return frappe.xcall("frappe.client.save", { doc }).then((saved) => {
						setup.state.mapping = saved;
					});
				});
			},
		};
	}

	preview_step() {
		return {
			title: __("Preview"),
			intro: __("See exactly what would be sent (secrets hidden) for one of your documents. Nothing is sent."),
			fields: (state) =>
				state.mapping.direction === "Inbound"
					? [
							{
								fieldname: "sample",
								fieldtype: "Code",
								options: "JSON",
								label: __("Sample Record (optional)"),
							},
							{ fieldname: "preview_button", fieldtype: "Button", label: __("Preview") },
					  ]
					: [
							{
								fieldname: "docname",
								fieldtype: "Link",
								options: state.mapping.source_doctype,
								label: __(state.mapping.source_doctype),
							},
							{ fieldname: "preview_button", fieldtype: "Button", label: __("Preview") },
					  ],
			after_render: (setup) => {
				const mapping = setup.state.mapping;
				setup.fields.get_field("preview_button").$input.addClass("ih-preview").on("click", () => {
					const values = setup.fields.get_values(true);
					const call =
						mapping.direction === "Inbound"
							? frappe.xcall("integration_hub.api.mapping.preview_inbound", {
									mapping: mapping.name,
									sample: values.sample || null,
							  })
							: frappe.xcall("integration_hub.api.mapping.preview", {
									mapping: mapping.name,
									docname: values.docname,
							  });
					call.then((result) => {
						setup.$result.empty();
						$(`<pre class="ih-preview-result"></pre>`).text(JSON.stringify(result, null, 2)).appendTo(setup.$result);
					});
				});
			},
			next: () => true,
		};
	}

	enable_step() {
		return {
			title: __("Enable"),
			intro: __("Turn the mapping on. From now on matching documents are sent by themselves; every attempt shows in the Sync Log."),
			fields: () => [{ fieldname: "enable_button", fieldtype: "Button", label: __("Enable the Mapping") }],
			after_render: (setup) => {
				const mapping = setup.state.mapping.name;
				setup.fields.get_field("enable_button").$input.addClass("btn-primary ih-enable").on("click", () =>
					frappe
						.xcall("frappe.client.set_value", { doctype: "Mapping", name: mapping, fieldname: "enabled", value: 1 })
						.then(() => {
							setup.finished = true;
							setup.message(__("Mapping {0} is enabled.", [mapping]), "green");
							const $links = $(`<div class="ih-setup-links"></div>`).appendTo(setup.$result);
							[
								[__("Open the Mapping"), `/app/mapping/${encodeURIComponent(mapping)}`],
								[__("Open the Connector"), `/app/connector/${encodeURIComponent(setup.state.connector)}`],
								[__("Sync Log"), `/app/sync-log?mapping=${encodeURIComponent(mapping)}`],
							].forEach(([label, href]) =>
								$(`<a class="btn btn-default btn-sm mr-2"></a>`).attr("href", href).text(label).appendTo($links)
							);
						})
				);
			},
		};
	}
}
