<?xml version="1.0" encoding="UTF-8"?>
<!-- catalog example site: turns the product document into an HTML table -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="UTF-8" omit-xml-declaration="yes"/>
  <xsl:param name="title" select="'Products'"/>
  <xsl:template match="/catalog">
    <table class="products">
      <caption><xsl:value-of select="$title"/> (<xsl:value-of select="count(product)"/>)</caption>
      <tr><th>Product</th><th>Category</th><th>Price</th><th>Stock</th></tr>
      <xsl:for-each select="product">
        <xsl:sort select="name"/>
        <tr id="{@id}">
          <td><xsl:value-of select="name"/></td>
          <td><xsl:value-of select="@category"/></td>
          <td><xsl:value-of select="format-number(price, '0.00')"/>&#160;<xsl:value-of select="price/@currency"/></td>
          <td>
            <xsl:choose>
              <xsl:when test="number(stock) &gt; 0"><xsl:value-of select="stock"/></xsl:when>
              <xsl:otherwise>sold out</xsl:otherwise>
            </xsl:choose>
          </td>
        </tr>
      </xsl:for-each>
    </table>
  </xsl:template>
</xsl:stylesheet>
